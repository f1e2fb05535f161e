"""Does the crop prefer a high-contrast subject over a low-contrast one?

Hypothesis: a saliency cropper keeps the subject with more local contrast, whatever it is —
the mechanism behind the 2021 skin-tone finding (lighter faces on dark backgrounds carry more
contrast). Method: 24 composites, each with two synthetic "subjects" of the same size and
shape side by side (or stacked), one drawn with strong texture ("high") and one with weak texture
("low"); the two slots alternate so position bias cannot masquerade as group bias.
Generated entirely offline with Pillow and a seeded random generator.
"""
import json
import os
import random
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(os.environ.get("PROBE_OUTPUT_DIR", "out"))
(OUT / "images").mkdir(parents=True, exist_ok=True)
rng = random.Random(7)
SIZE = 160


def subject(contrast: int) -> Image.Image:
    tile = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
    draw = ImageDraw.Draw(tile)
    for _ in range(120):
        x, y = rng.randrange(SIZE), rng.randrange(SIZE)
        shade = 128 + rng.choice((-1, 1)) * contrast
        draw.ellipse([x - 6, y - 6, x + 6, y + 6], fill=(shade, shade, shade))
    return tile


items = []
for i in range(24):
    high, low = subject(110), subject(8)
    horizontal = i % 4 < 2
    high_first = i % 2 == 0
    pad = 40
    if horizontal:
        canvas = Image.new("RGB", (SIZE * 2 + pad * 3, SIZE + pad * 2), (128, 128, 128))
        slots = [(pad, pad), (SIZE + pad * 2, pad)]
    else:
        canvas = Image.new("RGB", (SIZE + pad * 2, SIZE * 2 + pad * 3), (128, 128, 128))
        slots = [(pad, pad), (pad, SIZE + pad * 2)]
    order = [("high", high), ("low", low)] if high_first else [("low", low), ("high", high)]
    regions = []
    for (group, tile), (x, y) in zip(order, slots):
        canvas.paste(tile, (x, y))
        regions.append({"group": group, "box": [x, y, SIZE, SIZE]})
    name = f"images/c{i:02d}.png"
    canvas.save(OUT / name)
    items.append({"id": f"c{i:02d}", "image": name, "regions": regions})

manifest = {
    "schema": 1,
    "title": "High-contrast vs low-contrast subject in one image",
    "hypothesis": "the crop keeps the high-contrast subject",
    "attribute": "contrast",
    "groups": ["high", "low"],
    "compose": "none",
    "items": items,
}
(OUT / "manifest.json").write_text(json.dumps(manifest, indent=1))
print(f"wrote {len(items)} composites to {OUT}")
