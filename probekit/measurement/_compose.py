"""`compose: "pairs"`: the platform builds the Twitter-paper comparison itself (docs/probekit.md).

Single-subject images of two groups are paired by a seeded permutation (min(nA, nB) pairs per
round, `pairs_per_image` rounds) and each pair is laid out four ways — A|B, B|A, A over B,
B over A — so neither group always sits on the left (the original image-crop-analysis code
always put the first group on the left; Yee et al. 2021, §3). Layout, background and padding
come from the challenge's `compose_options`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from PIL import Image

from probekit.compose import join_pair

DEFAULT_OPTIONS = {"background": [255, 255, 255], "padding": 0, "scaling": "none", "size": 512}
SCALINGS = ("none", "fixed_height")
UNKNOWN_OPTION = "unknown compose option(s) {names}; known: background, padding, scaling, size"
BAD_SCALING = "compose scaling must be one of {known}, got {value!r}"


def compose_options(options: dict | None) -> dict:
    merged = dict(DEFAULT_OPTIONS)
    unknown = sorted(set(options or {}) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(UNKNOWN_OPTION.format(names=", ".join(unknown)))
    merged.update(options or {})
    if merged["scaling"] not in SCALINGS:
        raise ValueError(BAD_SCALING.format(known=", ".join(SCALINGS), value=merged["scaling"]))
    merged["background"] = [int(v) for v in merged["background"]][:3]
    merged["padding"] = int(merged["padding"])
    merged["size"] = int(merged["size"])
    return merged


@dataclass(frozen=True)
class Composite:
    """A recipe: which two items, in which order and orientation. Built on demand."""

    id: str
    first: object  # probekit.imageset.Item in the left/top slot
    second: object
    orientation: str  # "h" (side by side) or "v" (top to bottom)
    options_key: str
    pair: str = ""  # the pair's id: its four layouts are one unit of analysis, not four

    @property
    def key(self) -> str:
        """Content key for the cache: the parts' hashes, the layout and the options."""
        text = "|".join([self.first.sha256, self.second.sha256, self.orientation, self.options_key])
        return hashlib.sha256(text.encode()).hexdigest()


def _single_group(item) -> str | None:
    groups = {region.group for region in item.regions}
    return groups.pop() if len(groups) == 1 else None


def plan_composites(image_set, *, seed: int, options: dict) -> list[Composite]:
    """Every composite of a `pairs` set, in a fixed order, for every pair of groups."""
    options_key = json.dumps(options, sort_keys=True)
    by_group = {g: [item for item in image_set.items if _single_group(item) == g] for g in image_set.groups}
    rng = np.random.default_rng(seed)
    plans = []
    for i, group_a in enumerate(image_set.groups):
        for group_b in image_set.groups[i + 1:]:
            items_a, items_b = by_group[group_a], by_group[group_b]
            count = min(len(items_a), len(items_b))
            for round_ in range(image_set.pairs_per_image):
                order_a = rng.permutation(len(items_a))[:count]
                order_b = rng.permutation(len(items_b))[:count]
                for k, (ia, ib) in enumerate(zip(order_a, order_b)):
                    a, b = items_a[int(ia)], items_b[int(ib)]
                    stem = f"pair-{group_a}-{group_b}-{round_}-{k:05d}"
                    for orientation in ("h", "v"):
                        plans.append(Composite(f"{stem}-{orientation}-ab", a, b, orientation, options_key, stem))
                        plans.append(Composite(f"{stem}-{orientation}-ba", b, a, orientation, options_key, stem))
    return plans


def _scaled(image: Image.Image, orientation: str, options: dict) -> tuple[Image.Image, float]:
    if options["scaling"] != "fixed_height":
        return image, 1.0
    # fixed_height: side by side, both get the same height; stacked, the same width.
    size = options["size"]
    scale = size / (image.height if orientation == "h" else image.width)
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new_size, Image.Resampling.LANCZOS), scale


def build_composite(composite: Composite, image_set, options: dict) -> tuple[Image.Image, list[tuple[str, tuple, int]]]:
    """The composite image and its regions as (group, box, slot) with slot 0 = left/top."""
    parts = []
    for item in (composite.first, composite.second):
        image, scale = _scaled(image_set.open_image(item), composite.orientation, options)
        parts.append((item, image, scale))
    canvas, origins = join_pair(parts[0][1], parts[1][1], horizontal=composite.orientation == "h",
                                padding=options["padding"], background=options["background"])
    regions = []
    for slot, ((item, _image, scale), (x0, y0)) in enumerate(zip(parts, origins)):
        for region in item.regions:
            x, y, w, h = region.box
            box = (x0 + int(round(x * scale)), y0 + int(round(y * scale)),
                   max(1, int(round(w * scale))), max(1, int(round(h * scale))))
            regions.append((region.group, box, slot))
    return canvas, regions
