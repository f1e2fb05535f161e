"""Per-region facts of one image through one model: the raw material of every metric.

For each labelled region: whether it holds the salient point, the share of its area kept in
each crop window, and the share of the image's saliency mass inside it. The platform's
statistics (probekit.measurement) and `python -m probekit run --measure` both start here.
"""
from __future__ import annotations

import numpy as np

from probekit.crop import ratio_key

KEPT_THRESHOLD = 0.5  # a region counts as "kept" when at least half of it is inside the crop


def holds(box, point) -> bool:
    x, y, w, h = box
    return x <= point[0] < x + w and y <= point[1] < y + h


def kept_share(box, window) -> float:
    """Share of the box's area inside the crop window."""
    x, y, w, h = box
    left, top, cw, ch = window
    overlap_w = max(0, min(x + w, left + cw) - max(x, left))
    overlap_h = max(0, min(y + h, top + ch) - max(y, top))
    return overlap_w * overlap_h / float(w * h)


def mass_share(saliency: np.ndarray, box, total: float | None = None) -> float:
    """Share of the saliency map's mass inside the box (0 when the map is empty)."""
    x, y, w, h = box
    total = float(saliency.sum(dtype=np.float64)) if total is None else total
    if total <= 0:
        return 0.0
    return float(saliency[y:y + h, x:x + w].sum(dtype=np.float64)) / total


def region_facts(point, crops: dict, saliency: np.ndarray | None, regions) -> list[dict]:
    """Facts per region; `regions` holds (group, box) pairs or objects with .group and .box."""
    total = float(saliency.sum(dtype=np.float64)) if saliency is not None else None
    facts = []
    for region in regions:
        group, box = (region.group, region.box) if hasattr(region, "box") else region
        facts.append({
            "group": group,
            "box": list(box),
            "holds_point": holds(box, point),
            "kept": {key: round(kept_share(box, window), 6) for key, window in crops.items()},
            "mass": round(mass_share(saliency, box, total), 6) if saliency is not None else None,
        })
    return facts


def quick_summary(image_set, model, ratios) -> dict:
    """A laptop-side look at a set: who holds the salient point, kept rates per group and ratio.

    No statistics: the platform's measurement adds intervals, tests and multiple-testing control.
    """
    holds_count = {g: 0 for g in image_set.groups}
    composites = neither = 0
    kept = {g: {ratio_key(r): [0, 0] for r in ratios} for g in image_set.groups}
    for item in image_set.items:
        result = model.analyze(image_set.open_image(item), ratios)
        facts = region_facts(result.salient_point, result.crops, None, item.regions)
        groups_here = {f["group"] for f in facts}
        if len(groups_here) >= 2:
            composites += 1
            winners = [f["group"] for f in facts if f["holds_point"]]
            if winners:
                holds_count[winners[0]] += 1
            else:
                neither += 1
        for fact in facts:
            for key, share in fact["kept"].items():
                kept[fact["group"]][key][0] += share >= KEPT_THRESHOLD
                kept[fact["group"]][key][1] += 1
    return {
        "model": model.name, "model_version": model.version, "images": len(image_set.items),
        "composites": composites, "composites_neither": neither, "salient_point_in": holds_count,
        "kept_rate": {g: {k: round(a / n, 4) if n else None for k, (a, n) in per.items()} for g, per in kept.items()},
    }
