"""Does a border of a few pixels change which face the crop keeps?

Hypothesis
    For the same two faces in the same layout, adding 0–31 px of plain border around the
    image changes which face holds the salient point in a noticeable share of cases, and the
    slot (left/top vs right/bottom) matters as much as the person.

Background
    The 2021 Twitter algorithmic bias bounty entry "Pixel Perfect" showed that the cropper's
    choice between two people was brittle: padding a composite by 0–31 px changed the kept
    face in at least 16% of pairs, so a single comparison says little and any disparity
    measurement must control layout. Yee, Tantipongpipat & Mishra (2021, §3) make the same
    point about position: the original analysis always put one group on the left. This probe
    re-creates the sweep from the entry's public description; no code of it is used.

Method
    Two public-domain portraits that ship inside installed packages (scikit-image's
    `astronaut`, Eileen Collins; matplotlib's `grace_hopper.jpg`, Grace Hopper) are cut to
    head-and-shoulders pictures of one size (each person's region is their whole picture, as
    in the Twitter paper). Each composite holds both pictures 16 px apart, in
    both orders and both orientations, on a white or black background; the only thing that
    varies within a `base` is the border around the pair: 0, 1, 2, 4, 8, 12, 16, 20, 24, 28
    and 31 px. Groups are the two people, so the platform reports the preference between
    them and, separately, the position test (how often the first slot wins whoever is in it).
    The brittleness itself — the share of padded images whose winner differs from the
    unpadded one of the same base — is read from the per-image salient points; scripts/findings.py
    reports it as the "padding flip rate".

What a synthetic set can and cannot show
    Two people are two people: the preference between them says nothing about any group. What
    the set can show is instability — a border that no viewer would notice moving the crop —
    and position bias, both of which any honest group comparison has to design around (the
    platform's `compose: "pairs"` lays each pair out four ways for that reason).

References
    Yee, Tantipongpipat & Mishra (2021), arXiv:2105.08667; the 2021 bounty results (DEF CON AI
    Village, "Pixel Perfect" entry).
"""
import numpy as np
from PIL import Image
from skimage import data

from probekit import ImageSetWriter

PEOPLE = {  # group -> head-and-shoulders cut (left, top, right, bottom) in original pixels; faces of similar size
    "collins": (130, 10, 330, 250),
    "hopper": (60, 20, 460, 500),
}
TILE = (200, 240)
GAP = 16
BORDERS = (0, 1, 2, 4, 8, 12, 16, 20, 24, 28, 31)
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}


def load(name: str) -> np.ndarray:
    if name == "collins":
        return data.astronaut()
    import matplotlib.cbook  # imported here: only this photo needs matplotlib

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))


def tile(name: str) -> Image.Image:
    """The person's head-and-shoulders picture at TILE size."""
    return Image.fromarray(load(name)).crop(PEOPLE[name]).resize(TILE, Image.Resampling.LANCZOS)


def composite(tiles, order, background, horizontal: bool, border: int):
    width, height = TILE
    if horizontal:
        size = (2 * width + GAP + 2 * border, height + 2 * border)
        slots = [(border, border), (border + width + GAP, border)]
    else:
        size = (width + 2 * border, 2 * height + GAP + 2 * border)
        slots = [(border, border), (border, border + height + GAP)]
    canvas = Image.new("RGB", size, background)
    regions = []
    for name, (sx, sy) in zip(order, slots):
        canvas.paste(tiles[name], (sx, sy))
        regions.append((name, (sx, sy, width, height)))  # each person's region is their whole picture
    return canvas, regions


def main() -> None:
    tiles = {name: tile(name) for name in PEOPLE}
    writer = ImageSetWriter(
        title="Padding sweep: the same two faces with 0–31 px of border",
        hypothesis="a border of a few pixels changes which face the crop keeps; the first slot wins more often",
        attribute="padding_position",
        groups=list(PEOPLE),
    )
    with writer:
        for bg_name, background in BACKGROUNDS.items():
            for horizontal in (True, False):
                for order in (("collins", "hopper"), ("hopper", "collins")):
                    base = f"{bg_name}-{'h' if horizontal else 'v'}-{order[0]}-first"
                    for border in BORDERS:
                        image, regions = composite(tiles, order, background, horizontal, border)
                        writer.add(image, id=f"{base}-border{border:02d}", base=base, regions=regions)
    print(f"padding_position: wrote {len(writer.manifest['items'])} composites")


if __name__ == "__main__":
    main()
