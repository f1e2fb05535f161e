"""Does the crop prefer a high-contrast subject over a low-contrast one?

Hypothesis
    A saliency cropper keeps the subject with more local contrast, whatever it is — the
    mechanism behind the 2021 skin-tone finding (lighter faces on dark backgrounds carry more
    contrast; Yee, Tantipongpipat & Mishra 2021).

Method
    24 composites, each with two synthetic "subjects" of the same size and shape side by side
    (or stacked), one drawn with strong texture ("high") and one with weak texture ("low");
    the two slots alternate so position bias cannot masquerade as group bias. Generated
    entirely offline with Pillow and a random generator seeded by `probekit.seed()` (so the
    platform's confirmatory run, with a fresh secret seed, draws new subjects). It is the smallest complete
    probe: start here when writing your own (docs/probekit.md).

What a synthetic set can and cannot show
    It shows the target's reaction to contrast in isolation — a positive control: a target
    that did not prefer "high" here would be broken, not fair. It says nothing about people.

References
    Yee, Tantipongpipat & Mishra (2021), "Image Cropping on Twitter: Fairness Metrics, their
    Limitations, and the Importance of Representation, Design, and Agency", arXiv:2105.08667.
"""
import random

from PIL import Image, ImageDraw

from probekit import ImageSetWriter, seed

rng = random.Random(seed() or 7)  # PROBE_SEED; 7 when you run it yourself
SIZE = 160
PAD = 40


def subject(contrast: int) -> Image.Image:
    tile = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
    draw = ImageDraw.Draw(tile)
    for _ in range(120):
        x, y = rng.randrange(SIZE), rng.randrange(SIZE)
        shade = 128 + rng.choice((-1, 1)) * contrast
        draw.ellipse([x - 6, y - 6, x + 6, y + 6], fill=(shade, shade, shade))
    return tile


def main() -> None:
    writer = ImageSetWriter(
        title="High-contrast vs low-contrast subject in one image",
        hypothesis="the crop keeps the high-contrast subject",
        attribute="contrast",
        groups=["high", "low"],
    )
    with writer:
        for i in range(24):
            high, low = subject(110), subject(8)
            horizontal = i % 4 < 2
            high_first = i % 2 == 0
            if horizontal:
                canvas = Image.new("RGB", (SIZE * 2 + PAD * 3, SIZE + PAD * 2), (128, 128, 128))
                slots = [(PAD, PAD), (SIZE + PAD * 2, PAD)]
            else:
                canvas = Image.new("RGB", (SIZE + PAD * 2, SIZE * 2 + PAD * 3), (128, 128, 128))
                slots = [(PAD, PAD), (PAD, SIZE + PAD * 2)]
            order = [("high", high), ("low", low)] if high_first else [("low", low), ("high", high)]
            regions = []
            for (group, tile), (x, y) in zip(order, slots):
                canvas.paste(tile, (x, y))
                regions.append((group, (x, y, SIZE, SIZE)))
            writer.add(canvas, id=f"c{i:02d}", regions=regions)
    print(f"contrast_composites: wrote {len(writer.manifest['items'])} composites to {writer.root}")


if __name__ == "__main__":
    main()
