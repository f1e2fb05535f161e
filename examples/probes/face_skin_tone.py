"""Does the crop keep a face less often when only its skin is rendered darker?

Hypothesis
    The same face, identical but for the tone of its skin, is kept in the crop more often (and
    wins more side-by-side comparisons) when the skin is lighter.

Background
    Yee, Tantipongpipat & Mishra (2021, "Image Cropping on Twitter: Fairness Metrics, their
    Limitations, and the Importance of Representation, Design, and Agency") found that
    Twitter's saliency cropper favoured white over Black individuals in paired images (a 4%
    difference from demographic parity in their data), which started the 2021 bounty. They
    used consented photographs of real people; this probe asks the narrower, counterfactual
    question about one attribute of the image.

Method
    Two public-domain portraits that ship inside installed packages, so nothing is
    downloaded: scikit-image's `astronaut` (NASA portrait of Eileen Collins) and matplotlib's
    `grace_hopper.jpg` (US Navy portrait of Grace Hopper). The skin region is a hand-drawn
    face polygon per photo (coordinates below) intersected with a YCbCr skin-colour rule and
    feathered by 2 px; eyes, lips, teeth, hair, glasses and background are left untouched.
    The tone transform works in CIELAB on those pixels only: the mean skin colour is moved
    to a target (lighter: L* 74, darker: L* 30, with matching a*/b*) and each pixel's
    deviation from the mean is kept, its lightness part scaled into the room left towards
    black or white, so shading and texture survive. Both groups are edited by the same transform, so an editing artefact
    cannot favour one of them.
    Two designs in one set:
    - scenes: the portrait beside an unrelated photograph (coffee, cat, rocket, all from
      scikit-image) in a wide or tall frame, portrait first or second; the region is the face
      box, and the lighter and darker version of each scene share a `base` → the platform's
      paired test on the kept share of the face;
    - composites: the lighter and darker version of one portrait side by side or stacked, in
      both orders, on three backgrounds; as in the Twitter paper each region is a whole
      portrait → the preference test (which picture holds the salient point).

What a synthetic edit can and cannot show
    It can show that the target reacts to skin lightness with everything else held fixed,
    which photographs of different people cannot. It cannot show how the target treats
    people with darker skin: a recoloured face is not a darker-skinned person (features,
    hair, lighting and photographic practice all differ), two source photos are two people,
    and every statistic here generalises over placements, not over people. A real finding
    about people needs consented photographs of many people — see labelled_folder_pairs.

References
    Yee, Tantipongpipat & Mishra (2021), arXiv:2105.08667; Twitter's image-crop-analysis
    repository; skin-colour rule after Chai & Ngan (1999), "Face segmentation using
    skin-color map in videophone applications".
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from skimage import color, data

from probekit import ImageSetWriter
from probekit.compose import join_pair

# Per photo: where the portrait is cut, the hand-drawn face polygon (original pixels).
PHOTOS = {
    "astronaut": {
        "portrait": (100, 0, 370, 300),
        "face": [(188, 72), (222, 62), (262, 70), (272, 95), (275, 125), (268, 152), (250, 170), (252, 192),
                 (195, 192), (198, 168), (184, 140), (180, 100)],
    },
    "hopper": {
        "portrait": (110, 40, 420, 430),
        "face": [(175, 140), (220, 128), (330, 125), (362, 140), (365, 250), (335, 318), (300, 345), (250, 350),
                 (215, 330), (190, 290), (182, 250)],
    },
}
TONES = {"lighter": (74.0, 12.0, 17.0), "darker": (30.0, 16.0, 22.0)}  # target mean CIELAB of the skin
PORTRAIT_HEIGHT = 300
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128)}
PAD = 24


def load_photo(name: str) -> np.ndarray:
    if name == "astronaut":
        return data.astronaut()
    import matplotlib.cbook  # imported here: only this photo needs matplotlib

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))


def polygon_mask(shape, polygon) -> np.ndarray:
    mask = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(mask).polygon(polygon, fill=255)
    return np.asarray(mask) > 0


def skin_mask(rgb: np.ndarray, polygon) -> np.ndarray:
    """Feathered 0..1 mask: inside the polygon and skin-coloured in YCbCr (Chai & Ngan's ranges, widened)."""
    ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr")).astype(int)
    y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    skin = (cr >= 136) & (cr <= 180) & (cb >= 77) & (cb <= 127) & (y > 25) & polygon_mask(rgb.shape, polygon)
    closed = Image.fromarray((skin * 255).astype(np.uint8))
    closed = closed.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3))
    return np.asarray(closed.filter(ImageFilter.GaussianBlur(2)), dtype=float) / 255.0


def retone(rgb: np.ndarray, mask: np.ndarray, target) -> np.ndarray:
    """Move the masked pixels' mean CIELAB colour to `target`, keeping each pixel's deviation."""
    lab = color.rgb2lab(rgb)
    core = mask > 0.5
    mean = lab[core].mean(axis=0)
    edited = lab.copy()
    # Shading is scaled into the room left towards black (darkening) or white (lightening).
    spread = target[0] / mean[0] if target[0] < mean[0] else (100 - target[0]) / (100 - mean[0])
    edited[..., 0] = np.clip(target[0] + (lab[..., 0] - mean[0]) * spread, 0, 100)
    edited[..., 1:] = np.asarray(target[1:]) + (lab[..., 1:] - mean[1:])
    out = color.lab2rgb(edited) * 255.0
    blended = rgb * (1 - mask[..., None]) + out * mask[..., None]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def portrait(rgb: np.ndarray, spec: dict):
    """The head-and-shoulders cut at PORTRAIT_HEIGHT and the face box inside it."""
    left, top, right, bottom = spec["portrait"]
    scale = PORTRAIT_HEIGHT / (bottom - top)
    image = Image.fromarray(rgb).crop((left, top, right, bottom))
    image = image.resize((round((right - left) * scale), PORTRAIT_HEIGHT), Image.Resampling.LANCZOS)
    xs, ys = [p[0] for p in spec["face"]], [p[1] for p in spec["face"]]
    x0, y0 = (min(xs) - left) * scale, (min(ys) - top) * scale
    box = (round(x0), round(y0), round((max(xs) - min(xs)) * scale), round((max(ys) - min(ys)) * scale))
    return image, box


def fit_height(image: Image.Image, height: int) -> Image.Image:
    return image.resize((round(image.width * height / image.height), height), Image.Resampling.LANCZOS)


def scene(person: Image.Image, face_box, other: Image.Image, *, wide: bool, person_first: bool):
    """The portrait beside an unrelated photo; returns the image and the face box in it."""
    other = fit_height(other, PORTRAIT_HEIGHT)
    if wide:
        parts = [person, other] if person_first else [other, person]
        canvas = Image.new("RGB", (sum(p.width for p in parts) + 3 * PAD, PORTRAIT_HEIGHT + 2 * PAD), (255, 255, 255))
        x = PAD
        for part in parts:
            canvas.paste(part, (x, PAD))
            if part is person:
                origin = (x, PAD)
            x += part.width + PAD
    else:
        other = other.crop(((other.width - person.width) // 2, 0, (other.width + person.width) // 2, PORTRAIT_HEIGHT))
        other = other.resize((person.width, PORTRAIT_HEIGHT))
        parts = [person, other] if person_first else [other, person]
        canvas = Image.new("RGB", (person.width + 2 * PAD, 2 * PORTRAIT_HEIGHT + 3 * PAD), (255, 255, 255))
        y = PAD
        for part in parts:
            canvas.paste(part, (PAD, y))
            if part is person:
                origin = (PAD, y)
            y += PORTRAIT_HEIGHT + PAD
    x, y, w, h = face_box
    return canvas, (origin[0] + x, origin[1] + y, w, h)


def main() -> None:
    others = {"coffee": data.coffee(), "cat": data.chelsea(), "rocket": data.rocket()}
    writer = ImageSetWriter(
        title="Lighter vs darker skin tone, same face (synthetic skin-only edit)",
        hypothesis="the crop keeps the face more often when its skin is lighter",
        attribute="skin_tone",
        groups=list(TONES),
    )
    with writer:
        for name, spec in PHOTOS.items():
            rgb = load_photo(name)
            mask = skin_mask(rgb, spec["face"])
            versions = {tone: portrait(retone(rgb, mask, target), spec) for tone, target in TONES.items()}
            for other_name, other in others.items():
                for wide in (True, False):
                    for person_first in (True, False):
                        base = f"{name}-{other_name}-{'wide' if wide else 'tall'}-{'first' if person_first else 'second'}"
                        for tone, (image, box) in versions.items():
                            image, box = scene(image, box, Image.fromarray(other), wide=wide, person_first=person_first)
                            writer.add(image, id=f"{base}-{tone}", base=base, regions=[(tone, box)])
            width, height = versions["lighter"][0].size
            for bg_name, background in BACKGROUNDS.items():
                for horizontal in (True, False):
                    for order in (("lighter", "darker"), ("darker", "lighter")):
                        images = [versions[tone][0] for tone in order]
                        image, slots = join_pair(*images, horizontal=horizontal, padding=PAD,
                                                 background=background)
                        # as in the Twitter paper, each person's region is their whole picture
                        regions = [(tone, (sx, sy, width, height)) for tone, (sx, sy) in zip(order, slots)]
                        layout = "h" if horizontal else "v"
                        writer.add(image, id=f"{name}-pair-{bg_name}-{layout}-{order[0]}-first", regions=regions)
    print(f"face_skin_tone: wrote {len(writer.manifest['items'])} images")


if __name__ == "__main__":
    main()
