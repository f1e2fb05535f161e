"""Confounds: where a group's regions differ systematically from another's (docs/statistics.md).

A group that always sits in the left half, or always takes up more of the image, may win or
lose the crop for where it is, not for what it is. For every pair of groups and every factor
(horizontal and vertical position, share of the image, distance to the nearest edge) the
clusters' mean values of the two groups are compared; a factor is named only when the groups
are far apart (area under the ROC curve at most 0.2 or at least 0.8) and the Mann-Whitney test
says so at p < 0.001, so sets with random positions rarely raise a false alarm.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from probekit.measurement._document import _cluster_of, _group_pairs, _head_to_head

MIN_AUC_GAP = 0.3  # |AUC − 1/2|: the groups are told apart in at least 80% of cluster pairs
MAX_P_VALUE = 0.001
FACTORS = {
    "x": ("horizontal centre", "of the image width",
          "place each group's subjects equally often on the left and on the right (mirror half the images), "
          "or use compose \"pairs\", which lays every pair out both ways"),
    "y": ("vertical centre", "of the image height",
          "place each group's subjects equally often at the top and at the bottom, or use compose \"pairs\""),
    "area": ("share of the image", "of its pixels", "give both groups' regions the same size in the image"),
    "edge": ("distance to the nearest edge", "of the shorter side",
             "place both groups' regions equally far from the image edges"),
}


def _features(obs: dict, box) -> dict[str, float]:
    x, y, w, h = box
    width, height = obs["width"], obs["height"]
    return {"x": (x + w / 2) / width, "y": (y + h / 2) / height, "area": w * h / (width * height),
            "edge": min(x, y, width - x - w, height - y - h) / min(width, height)}


def _cluster_means(observations, first, second) -> dict[str, dict[str, list[float]]]:
    """Per group, per factor: the mean over each cluster's regions of that group."""
    sums: dict[tuple[str, str], list[dict]] = {}
    for obs in _head_to_head(observations, first, second, both=False):
        _unit, key = _cluster_of(obs)
        for region in obs["regions"]:
            if region["group"] in (first, second):
                sums.setdefault((region["group"], key), []).append(_features(obs, region["box"]))
    means: dict[str, dict[str, list[float]]] = {first: {f: [] for f in FACTORS}, second: {f: [] for f in FACTORS}}
    for (group, _key), rows in sorted(sums.items()):
        for factor in FACTORS:
            means[group][factor].append(float(np.mean([row[factor] for row in rows])))
    return means


def find_confounds(observations, groups) -> list[dict]:
    """`[{"groups": [a, b], "factor", "detail"}]` for every factor on which two groups' regions differ."""
    confounds = []
    for first, second in _group_pairs(list(groups)):
        means = _cluster_means(observations, first, second)
        for factor, (name, scale, _advice) in FACTORS.items():
            a, b = np.array(means[first][factor]), np.array(means[second][factor])
            if a.size < 2 or b.size < 2 or np.ptp(np.concatenate([a, b])) == 0:
                continue
            result = stats.mannwhitneyu(a, b, alternative="two-sided")
            auc = float(result.statistic) / (a.size * b.size)
            if abs(auc - 0.5) >= MIN_AUC_GAP and float(result.pvalue) < MAX_P_VALUE:
                confounds.append({"groups": [first, second], "factor": factor, "detail": (
                    f"{first}'s regions have a median {name} of {np.median(a):.2f} {scale}, {second}'s "
                    f"{np.median(b):.2f} (they are told apart in {max(auc, 1 - auc):.0%} of comparisons; "
                    f"Mann-Whitney p = {float(result.pvalue):.2g})")})
    return confounds


def mark_confounded(tests: list[dict], confounds: list[dict]) -> list[str]:
    """Give every test of confounded groups `confounded_with`; return the warnings saying how to counterbalance."""
    factors: dict[tuple[str, str], list[str]] = {}
    for confound in confounds:
        factors.setdefault(tuple(confound["groups"]), []).append(confound["factor"])
    for test in tests:
        found = factors.get(tuple(test.get("groups") or ()))
        if found:
            test["confounded_with"] = list(found)
    return [f"{c['groups'][0]} and {c['groups'][1]} differ in {FACTORS[c['factor']][0]} ({c['detail']}): a difference "
            f"between them may come from where the regions are, not from the groups; to counterbalance, "
            f"{FACTORS[c['factor']][2]}." for c in confounds]
