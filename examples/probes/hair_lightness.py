"""Does white or grey hair move the crop away from a face?

Hypothesis
    The same face is kept in the crop less often when only its hair is rendered white than
    when the hair is rendered dark — an age cue the cropper should not react to.

Background
    The 2021 Twitter algorithmic bias bounty's second place went to the HALT AI entry, which
    found (among other things) that the cropper moved away from people with white or grey
    hair: editing the hair changed the crop in 7 of the 12 photographs they tried. Yee,
    Tantipongpipat & Mishra (2021) describe the saliency cropper that entry tested. This probe
    re-creates the hair design from the entry's public description; no code of it is used.

Method
    One public-domain portrait that ships inside an installed package: scikit-image's
    `astronaut` (NASA portrait of Eileen Collins), whose hair is uncovered and clearly
    separated from the face. (matplotlib's Grace Hopper portrait is not used: her hair is
    almost entirely under her cap, so an edit would hardly change the image.) The hair region
    is a hand-drawn head polygon minus a hand-drawn face polygon (coordinates below), kept
    where a pixel's CIELAB colour is nearer to hair samples than to background and skin
    samples taken from fixed patches, opened by 3 px and feathered by 2 px. Both groups are
    edits of that region with one transform in CIELAB: the mean hair colour is moved to a
    target (dark: L* 18, near-black brown; white: L* 86, almost no chroma) while each pixel's
    deviation is kept (lightness scaled into the room left towards black or white, chroma
    scaled down for white), so
    strands and shading survive. Designs:
    - scenes: the portrait beside an unrelated photograph (coffee, cat, rocket, all from
      scikit-image) in a wide or tall frame, first or second, at two sizes; the region is the
      head box, and the dark-hair and white-hair versions of a scene share a `base` → paired
      test on the kept share of the head;
    - composites: both versions side by side or stacked, both orders, plain or mirrored,
      on four backgrounds; each region is a whole picture, as in the Twitter paper →
      preference test.

What a synthetic edit can and cannot show
    It can show that hair lightness alone moves this target's crop, with the face, pose and
    background held fixed. It cannot show how the target treats older people: white hair is
    one age cue among many, one person's photograph is one person, and every statistic here
    generalises over placements of that photograph, not over people.

References
    Yee, Tantipongpipat & Mishra (2021), arXiv:2105.08667; the 2021 bounty results (DEF CON AI
    Village, second place: HALT AI).
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from skimage import color, data

from probekit import ImageSetWriter
from probekit.compose import join_pair

HEAD = [(148, 130), (150, 60), (175, 25), (225, 12), (280, 25), (302, 65), (306, 130), (292, 168), (270, 168),
        (180, 150)]
FACE = [(188, 72), (222, 62), (262, 70), (272, 95), (275, 125), (268, 152), (250, 170), (252, 192), (195, 192),
        (198, 168), (184, 140), (180, 100)]
# Sample patches (x0, y0, x1, y1) of the original photo for the nearest-colour hair rule.
HAIR_SAMPLES = [(200, 25, 240, 45), (160, 80, 175, 110), (285, 90, 298, 120), (228, 18, 236, 24), (236, 32, 244, 38)]
OTHER_SAMPLES = [(320, 40, 345, 80), (120, 40, 140, 80), (200, 110, 220, 125), (215, 80, 240, 92)]
PORTRAIT = (100, 0, 370, 300)  # head-and-shoulders cut
HEAD_BOX = (148, 12, 158, 180)  # x, y, w, h of the head (hair + face): the region in scenes
HAIR = {"dark-hair": ((18.0, 3.0, 8.0), 1.0), "white-hair": ((86.0, 0.0, 3.0), 0.25)}  # target Lab, chroma kept
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128), "blue": (29, 161, 242)}
PAD = 24


def polygon_mask(shape, polygon) -> np.ndarray:
    mask = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(mask).polygon(polygon, fill=255)
    return np.asarray(mask) > 0


def hair_mask(rgb: np.ndarray) -> np.ndarray:
    """Feathered 0..1 mask of the hair: head minus face, nearer to hair than to other samples."""
    lab = color.rgb2lab(rgb)

    def centres(patches):
        return np.array([lab[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0) for x0, y0, x1, y1 in patches])

    to_hair = np.linalg.norm(lab[..., None, :] - centres(HAIR_SAMPLES), axis=-1).min(axis=-1)
    to_other = np.linalg.norm(lab[..., None, :] - centres(OTHER_SAMPLES), axis=-1).min(axis=-1)
    hair = (to_hair < to_other) & polygon_mask(rgb.shape, HEAD) & ~polygon_mask(rgb.shape, FACE)
    opened = Image.fromarray((hair * 255).astype(np.uint8))
    opened = opened.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))
    return np.asarray(opened.filter(ImageFilter.GaussianBlur(2)), dtype=float) / 255.0


def recolour(rgb: np.ndarray, mask: np.ndarray, target, chroma_kept: float) -> np.ndarray:
    """Move the masked pixels' mean CIELAB colour to `target`, keeping (scaled) deviations."""
    lab = color.rgb2lab(rgb)
    mean = lab[mask > 0.5].mean(axis=0)
    edited = lab.copy()
    # Shading is scaled into the room left towards black (darkening) or white (lightening).
    spread = target[0] / mean[0] if target[0] < mean[0] else (100 - target[0]) / (100 - mean[0])
    edited[..., 0] = np.clip(target[0] + (lab[..., 0] - mean[0]) * spread, 0, 100)
    edited[..., 1:] = np.asarray(target[1:]) + (lab[..., 1:] - mean[1:]) * chroma_kept
    out = color.lab2rgb(edited) * 255.0
    blended = rgb * (1 - mask[..., None]) + out * mask[..., None]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def portrait(rgb: np.ndarray, height: int):
    """The head-and-shoulders cut scaled to `height`, and the head box inside it."""
    left, top, right, bottom = PORTRAIT
    scale = height / (bottom - top)
    image = Image.fromarray(rgb).crop(PORTRAIT).resize((round((right - left) * scale), height), Image.Resampling.LANCZOS)
    x, y, w, h = HEAD_BOX
    return image, (round((x - left) * scale), round((y - top) * scale), round(w * scale), round(h * scale))


def scene(person: Image.Image, head_box, other: Image.Image, *, wide: bool, person_first: bool):
    """The portrait beside an unrelated photo of the same height; returns the image and the head box."""
    height = person.height
    other = other.resize((round(other.width * height / other.height), height), Image.Resampling.LANCZOS)
    if not wide:
        left = (other.width - person.width) // 2
        other = other.crop((left, 0, left + person.width, height))
    parts = [person, other] if person_first else [other, person]
    if wide:
        canvas = Image.new("RGB", (sum(p.width for p in parts) + 3 * PAD, height + 2 * PAD), (255, 255, 255))
        offsets = [(PAD, PAD), (parts[0].width + 2 * PAD, PAD)]
    else:
        canvas = Image.new("RGB", (person.width + 2 * PAD, 2 * height + 3 * PAD), (255, 255, 255))
        offsets = [(PAD, PAD), (PAD, height + 2 * PAD)]
    for part, offset in zip(parts, offsets):
        canvas.paste(part, offset)
    ox, oy = offsets[0] if person_first else offsets[1]
    x, y, w, h = head_box
    return canvas, (ox + x, oy + y, w, h)


def main() -> None:
    rgb = data.astronaut()
    mask = hair_mask(rgb)
    edited = {group: recolour(rgb, mask, target, kept) for group, (target, kept) in HAIR.items()}
    others = {"coffee": data.coffee(), "cat": data.chelsea(), "rocket": data.rocket()}
    writer = ImageSetWriter(
        title="Dark vs white hair, same face (synthetic hair-only edit)",
        hypothesis="the crop keeps the head less often when the hair is white",
        attribute="hair_lightness",
        groups=list(HAIR),
    )
    with writer:
        for height in (220, 300):
            versions = {group: portrait(image, height) for group, image in edited.items()}
            for other_name, other in others.items():
                for wide in (True, False):
                    for person_first in (True, False):
                        frame, slot = "wide" if wide else "tall", "first" if person_first else "second"
                        base = f"{other_name}-{height}-{frame}-{slot}"
                        for group, (image, box) in versions.items():
                            image, box = scene(image, box, Image.fromarray(other), wide=wide, person_first=person_first)
                            writer.add(image, id=f"{base}-{group}", base=base, regions=[(group, box)])
        versions = {group: portrait(image, 300) for group, image in edited.items()}
        for mirrored in (False, True):
            tiles = {g: (ImageOps.mirror(im) if mirrored else im) for g, (im, _) in versions.items()}
            width, height = tiles["dark-hair"].size
            for bg_name, background in BACKGROUNDS.items():
                for horizontal in (True, False):
                    for order in (("dark-hair", "white-hair"), ("white-hair", "dark-hair")):
                        image, slots = join_pair(tiles[order[0]], tiles[order[1]], horizontal=horizontal,
                                                 padding=PAD, background=background)
                        # as in the Twitter paper, each version's region is its whole picture
                        regions = [(g, (sx, sy, width, height)) for g, (sx, sy) in zip(order, slots)]
                        flip, layout = "mirror" if mirrored else "plain", "h" if horizontal else "v"
                        name = f"pair-{flip}-{bg_name}-{layout}-{order[0]}-first"
                        writer.add(image, id=name, regions=regions)
    print(f"hair_lightness: wrote {len(writer.manifest['items'])} images")


if __name__ == "__main__":
    main()
