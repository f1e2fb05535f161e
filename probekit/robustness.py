"""Robustness: is a significant test still significant under changes that should not matter?

Each change rewrites an image set (images and region boxes) and the set is measured again with
the same settings; the first document's Holm-significant base-model tests are compared.

- `pad`: a 13-pixel border of the image's background colour (its top-left pixel);
- `mirror`: a horizontal flip, regions flipped;
- `jpeg`: re-encoded as JPEG at quality 90;
- `scale`: 90% of the size, regions scaled.

A test is `robust` when, under every change, its estimate is on the same side of parity and its
p-value is below 0.05; else `fragile`, with the changes that broke it in `broken_by`.
"""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageOps

from probekit.measurement._document import ALPHA
from probekit.replication import direction

CHANGES = ("pad", "mirror", "jpeg", "scale")
PAD_PX = 13
JPEG_QUALITY = 90
SCALE = 0.9


def _box(change: str, box: list[int], size: tuple[int, int], new_size: tuple[int, int]) -> list[int]:
    x, y, w, h = box
    if change == "pad":
        return [x + PAD_PX, y + PAD_PX, w, h]
    if change == "mirror":
        return [size[0] - x - w, y, w, h]
    if change == "scale":
        sx, sy = new_size[0] / size[0], new_size[1] / size[1]
        left, top = min(new_size[0] - 1, round(x * sx)), min(new_size[1] - 1, round(y * sy))
        return [left, top, max(1, min(new_size[0] - left, round(w * sx))), max(1, min(new_size[1] - top, round(h * sy)))]
    return list(box)


def _image(change: str, image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    if change == "pad":
        return ImageOps.expand(image, border=PAD_PX, fill=image.getpixel((0, 0)))
    if change == "mirror":
        return ImageOps.mirror(image)
    if change == "scale":
        return image.resize((max(1, round(image.width * SCALE)), max(1, round(image.height * SCALE))), Image.LANCZOS)
    return image


def transform_set(source: Path, dest: Path, change: str) -> Path:
    """Write `source`'s set under `change` into `dest` (manifest.json and images/)."""
    source, dest = Path(source), Path(dest)
    manifest = json.loads((source / "manifest.json").read_text())
    (dest / "images").mkdir(parents=True, exist_ok=True)
    for item in manifest["items"]:
        with Image.open(source / item["image"]) as original:
            original.load()
            changed = _image(change, original)
        suffix = ".jpg" if change == "jpeg" else ".png"
        name = f"images/{item['id']}{suffix}"
        if change == "jpeg":
            changed.save(dest / name, "JPEG", quality=JPEG_QUALITY)
        else:
            changed.save(dest / name, "PNG")
        item["image"] = name
        for region in item.get("regions", []):
            region["box"] = _box(change, region["box"], original.size, changed.size)
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def significant_base_tests(document: dict) -> list[dict]:
    return [t for t in document.get("tests", []) if t.get("variant") is None and t.get("p_holm") is not None
            and t["p_holm"] < ALPHA and direction(t) != 0]


def verdicts(first: dict, changed: dict[str, dict]) -> dict:
    """`{"<test id>": {"pad": {"estimate", "p_value", "same_direction"}, …, "verdict", "broken_by"}}`."""
    out = {}
    for test in significant_base_tests(first):
        row, broken = {}, []
        for change, document in changed.items():
            twin = next((t for t in document.get("tests", []) if t["id"] == test["id"]), {})
            same = direction(twin) == direction(test)
            row[change] = {"estimate": twin.get("estimate"), "p_value": twin.get("p_value"), "same_direction": same}
            if not same or twin.get("p_value") is None or twin["p_value"] >= ALPHA:
                broken.append(change)
        out[test["id"]] = {**row, "verdict": "fragile" if broken else "robust", "broken_by": broken}
    return out
