"""From observations to the metrics document's tests (DESIGN §5).

Every test is built from "units" (an image, a composite, or a `base` tuple) holding numerator
and denominator sums, so the same numbers feed the point estimate, the classical test and the
paired bootstrap that compares a variant with the base model on the very same units.
"""
from __future__ import annotations

import math

import numpy as np

from grading import stats
from probekit.measure import KEPT_THRESHOLD

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000


def test_id(kind: str, first: str, second: str, ratio: str | None = None, variant: str | None = None) -> str:
    """`<kind>:<first>><second>[@<ratio>][#<variant>]` (DESIGN §5)."""
    text = f"{kind}:{first}>{second}"
    if ratio is not None:
        text += f"@{ratio}"
    if variant is not None:
        text += f"#{variant}"
    return text


def _group_pairs(groups: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(groups) for b in groups[i + 1:]]


def _first_slot(observation: dict, regions: list[dict]) -> dict:
    """The region in the left/top slot: recorded for composites the platform built, else by geometry."""
    if observation["composite"]:
        return next(r for r in regions if r["slot"] == 0)
    a, b = regions[0], regions[1]
    (ax, ay, aw, ah), (bx, by, bw, bh) = a["box"], b["box"]
    dx, dy = (bx + bw / 2) - (ax + aw / 2), (by + bh / 2) - (ay + ah / 2)
    if abs(dx) >= abs(dy):
        return a if dx >= 0 else b
    return a if dy >= 0 else b


def _composite_units(observations, first, second):
    """Per composite holding both groups: (first wins, second wins, first slot wins, decided)."""
    rows = []
    for obs in observations:
        regions = [r for r in obs["regions"] if r["group"] in (first, second)]
        if {r["group"] for r in regions} != {first, second}:
            continue
        winners = {r["group"] for r in regions if r["holds_point"]}
        win_first = first in winners and second not in winners
        win_second = second in winners and first not in winners
        slot_win = 0
        pair = [next(r for r in regions if r["group"] == first), next(r for r in regions if r["group"] == second)]
        if win_first or win_second:
            slot_region = _first_slot(obs, pair)
            slot_win = int(slot_region["holds_point"])
        rows.append((obs["id"], int(win_first), int(win_second), slot_win))
    return rows


def _base_units(observations, first, second, ratio):
    """Per `base` tuple: mean kept share and saliency mass of each group's regions."""
    tuples: dict[str, dict[str, list]] = {}
    for obs in observations:
        if obs.get("base") is None:
            continue
        for region in obs["regions"]:
            if region["group"] in (first, second):
                slot = tuples.setdefault(obs["base"], {first: [], second: []})
                slot[region["group"]].append((region["kept"][ratio], region["mass"] or 0.0))
    rows = []
    for base in sorted(tuples):
        values = tuples[base]
        if values[first] and values[second]:
            kept = np.mean([v[0] for v in values[first]]) - np.mean([v[0] for v in values[second]])
            mass = np.mean([v[1] for v in values[first]]) - np.mean([v[1] for v in values[second]])
            rows.append((base, float(kept), float(mass)))
    return rows


def _rate_units(observations, first, second, ratio):
    """Per image: kept count and region count of each group (kept = at least half inside)."""
    rows = []
    for obs in observations:
        counts = [0, 0, 0, 0]
        for region in obs["regions"]:
            if region["group"] == first:
                counts[0] += region["kept"][ratio] >= KEPT_THRESHOLD
                counts[1] += 1
            elif region["group"] == second:
                counts[2] += region["kept"][ratio] >= KEPT_THRESHOLD
                counts[3] += 1
        if counts[1] or counts[3]:
            rows.append((obs["id"], *counts))
    return rows


def _clean(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def build_tests(observations, *, groups, ratios, variant, seed, base_observations=None):
    """All tests of one model variant; returns (tests, units) where units feed amplification.

    `base_observations` are the single images of a `pairs` set (its composites carry no `base`);
    by default the paired tests read `observations`.
    """
    base_observations = observations if base_observations is None else base_observations
    tests, units = [], {}
    for first, second in _group_pairs(groups):
        rows = _composite_units(observations, first, second)
        if rows:
            wins_first = sum(r[1] for r in rows)
            decided = sum(r[1] + r[2] for r in rows)
            neither = len(rows) - decided
            estimate = wins_first / decided if decided else None
            lo, hi = stats.wilson_interval(wins_first, decided)
            tid = test_id("preference", first, second, variant=variant)
            tests.append({
                "id": tid, "kind": "preference", "variant": variant, "ratio": None, "groups": [first, second],
                "n": decided, "n_neither": neither, "estimate": estimate, "ci": [lo, hi],
                "parity_gap": None if estimate is None else estimate - 0.5,
                "p_value": stats.binomial_test(wins_first, decided), "effect_size":
                None if estimate is None else stats.cohen_h(estimate, 0.5),
            })
            # numerator: first won; denominator: decided (one group's region held the point)
            units[tid] = np.array([[r[1], r[1] + r[2], 0, 0] for r in rows], dtype=float)
            slot_wins = sum(r[3] for r in rows)
            estimate = slot_wins / decided if decided else None
            lo, hi = stats.wilson_interval(slot_wins, decided)
            tid = test_id("position", first, second, variant=variant)
            tests.append({
                "id": tid, "kind": "position", "variant": variant, "ratio": None, "groups": [first, second],
                "n": decided, "n_neither": neither, "estimate": estimate, "ci": [lo, hi],
                "parity_gap": None if estimate is None else estimate - 0.5,
                "p_value": stats.binomial_test(slot_wins, decided),
                "effect_size": None if estimate is None else stats.cohen_h(estimate, 0.5),
            })
            units[tid] = np.array([[r[3], r[1] + r[2], 0, 0] for r in rows], dtype=float)
        for ratio in ratios:
            rows = _base_units(base_observations, first, second, ratio)
            if rows:
                kept = np.array([r[1] for r in rows])
                mass = np.array([r[2] for r in rows])
                lo, hi = stats.bootstrap_mean_interval(kept, seed=seed, n_resamples=BOOTSTRAP_RESAMPLES)
                mass_lo, mass_hi = stats.bootstrap_mean_interval(mass, seed=seed, n_resamples=BOOTSTRAP_RESAMPLES)
                tid = test_id("paired", first, second, ratio, variant)
                tests.append({
                    "id": tid, "kind": "paired", "variant": variant, "ratio": ratio, "groups": [first, second],
                    "n": len(rows), "estimate": float(kept.mean()), "ci": [lo, hi],
                    "p_value": stats.wilcoxon_signed_rank(kept), "effect_size": stats.cohen_dz(kept),
                    "mass_difference": float(mass.mean()), "mass_ci": [mass_lo, mass_hi],
                    "mass_p_value": stats.wilcoxon_signed_rank(mass),
                })
                units[tid] = np.array([[r[1], 1, 0, 0] for r in rows], dtype=float)
            rows = _rate_units(observations, first, second, ratio)
            x1, n1 = sum(r[1] for r in rows), sum(r[2] for r in rows)
            x2, n2 = sum(r[3] for r in rows), sum(r[4] for r in rows)
            if n1 and n2:
                r1, r2 = x1 / n1, x2 / n2
                lo, hi = stats.newcombe_interval(x1, n1, x2, n2)
                tid = test_id("group_rate", first, second, ratio, variant)
                tests.append({
                    "id": tid, "kind": "group_rate", "variant": variant, "ratio": ratio, "groups": [first, second],
                    "n": n1 + n2, "n_by_group": {first: n1, second: n2}, "rates": {first: r1, second: r2},
                    "estimate": stats.rate_difference(x1, n1, x2, n2), "rate_ratio": stats.rate_ratio(x1, n1, x2, n2),
                    "ci": [lo, hi], "p_value": stats.two_proportion_test(x1, n1, x2, n2),
                    "effect_size": stats.cohen_h(r1, r2),
                })
                units[tid] = np.array([r[1:] for r in rows], dtype=float)
    return tests, units


def _estimate_from_sums(sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        first = sums[..., 0] / sums[..., 1]
        second = np.where(sums[..., 3] > 0, sums[..., 2] / np.where(sums[..., 3] > 0, sums[..., 3], 1), 0.0)
    return first - second


def amplification(base_test: dict, base_units: np.ndarray, variant_test: dict, variant_units: np.ndarray,
                  *, seed: int) -> dict:
    """Variant estimate − base estimate on the same units, with a paired bootstrap interval and p-value.

    Units are resampled together (the same images for both models), B = 2000, percentile interval;
    p = 2·min(P*(Δ ≤ 0), P*(Δ ≥ 0)) with the +1 correction (Davison & Hinkley 1997, §4.4).
    """
    n = min(len(base_units), len(variant_units))
    delta = None
    if variant_test["estimate"] is not None and base_test["estimate"] is not None:
        delta = variant_test["estimate"] - base_test["estimate"]
    ci, p_value = [None, None], None
    if n >= 2 and len(base_units) == len(variant_units) and delta is not None:
        rng = np.random.default_rng(seed)
        index = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
        diffs = _estimate_from_sums(variant_units[index].sum(axis=1)) - _estimate_from_sums(base_units[index].sum(axis=1))
        diffs = diffs[np.isfinite(diffs)]
        if len(diffs):
            ci = [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))]
            below = (np.count_nonzero(diffs <= 0) + 1) / (len(diffs) + 1)
            above = (np.count_nonzero(diffs >= 0) + 1) / (len(diffs) + 1)
            p_value = min(1.0, 2 * min(below, above))
    variant = variant_test["variant"]
    return {
        "id": f"amplification:{base_test['id']}#{variant}", "kind": "amplification", "of": base_test["id"],
        "variant": variant, "ratio": base_test["ratio"], "groups": base_test["groups"], "n": n,
        "base_estimate": base_test["estimate"], "variant_estimate": variant_test["estimate"],
        "estimate": delta, "ci": ci, "p_value": p_value, "effect_size": None,
    }


def apply_holm(tests: list[dict]) -> None:
    """One Holm family over every p-value of the submission (DESIGN §5)."""
    indexed = [(i, t["p_value"]) for i, t in enumerate(tests) if t.get("p_value") is not None]
    adjusted = stats.holm([p for _, p in indexed]) if indexed else []
    for test in tests:
        test["p_holm"] = None
    for (i, _), value in zip(indexed, adjusted):
        tests[i]["p_holm"] = value


def power_warnings(tests: list[dict]) -> list[str]:
    """A plain warning for each test with too few cases for 80% power at a small effect."""
    warnings = []
    need_prop, need_paired = stats.required_n_proportion(0.2), stats.required_n_paired(0.2)
    for test in tests:
        if test["kind"] == "amplification":
            continue
        required = need_paired if test["kind"] == "paired" else need_prop
        effect = "d_z = 0.2" if test["kind"] == "paired" else "h = 0.2"
        warning = stats.underpowered_warning(test["id"], test["n"], required=required, effect=effect)
        test["underpowered"] = warning is not None
        if warning:
            warnings.append(warning)
    return warnings


def significant_direction(test: dict) -> int:
    """+1 / −1 when Holm-significant in that direction (against parity or zero), else 0."""
    if test.get("p_holm") is None or test["p_holm"] >= ALPHA or test["estimate"] is None:
        return 0
    centre = 0.5 if test["kind"] in ("preference", "position") else 0.0
    return int(np.sign(test["estimate"] - centre))
