"""Validity of the metrics document's inference: false-positive rate, coverage and power.

Exchangeable nulls (every group's images drawn independently from one distribution) must give
Holm-significant documents at about 5% and preference intervals that cover parity about 95% of
the time; an engineered effect of stated size must be found at least at its stated power.
Simulated observations go through the production test-building code (docs/statistics.md);
real image sets go through `measure_image_set` on the fast model. Prints one JSON line per figure.
BENCH_INFERENCE_SCALE (default 1.0) scales the number of simulated sets.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from grading.measurement import measure_image_set  # noqa: E402
from probekit.simulation import (  # noqa: E402
    LAYOUT_NOISE,
    document_tests,
    exchangeable_singles,
    null_figures,
    pooled_composites,
    primary_power,
    probe_built_figures,
    simulate_set,
    simulated_tests,
)

ALPHA = 0.05
MODEL = "spectral-residual"
SCALE = float(os.environ.get("BENCH_INFERENCE_SCALE", "1.0"))


def _count(n: int) -> int:
    return max(10, int(n * SCALE))


def _se(rate: float, n: int) -> float:
    return round(math.sqrt(max(rate * (1 - rate), 1e-12) / n), 4)


def simulated_nulls() -> None:
    cases = [("two groups, 50 pairs", ("a", "b"), 50, 1, 500), ("two groups, 12 pairs", ("a", "b"), 12, 1, 500),
             ("three groups, 20 per group", ("a", "b", "c"), 20, 1, 300),
             ("two groups, pairs_per_image 3", ("a", "b"), 20, 3, 400)]
    for label, groups, n, reuse, documents in cases:
        started = time.perf_counter()
        figures = null_figures(range(10_000, 10_000 + _count(documents)), groups=groups, n_per_group=n,
                               pairs_per_image=reuse)
        fwer, coverage = figures["familywise_false_positive_rate"], figures["preference_coverage"]
        print(json.dumps({"bench": "inference", "case": f"simulated null: {label}", "documents": figures["documents"],
                          "familywise_false_positive_rate": round(fwer, 4), "fwer_se": _se(fwer, figures["documents"]),
                          "preference_coverage": round(coverage, 4),
                          "coverage_se": _se(coverage, figures["preference_intervals"]),
                          "nominal": "0.05 / 0.95", "seconds": round(time.perf_counter() - started, 1)}), flush=True)


def simulated_power() -> None:
    for win, n_pairs in ((0.65, 80), (0.75, 50), (0.75, 30)):
        shift = stats.norm.ppf(win) * math.sqrt(2.0 + LAYOUT_NOISE**2)
        family = document_tests(*simulate_set(0, shift={"a": shift}, n_per_group=n_pairs), groups=("a", "b"))[1]
        wins = np.arange(n_pairs + 1)
        rejects = np.array([stats.binomtest(int(k), n_pairs).pvalue <= ALPHA / family["size"] for k in wins])
        stated = float(stats.binom.pmf(wins[rejects], n_pairs, win).sum())
        sets = _count(200)
        hits = sum(next(t for t in simulated_tests(seed, shift={"a": shift}, n_per_group=n_pairs)
                        if t["id"] == "preference:a>b")["p_holm"] < ALPHA for seed in range(sets))
        print(json.dumps({"bench": "inference", "case": f"simulated effect: pair won {win:.0%}, {n_pairs} pairs",
                          "effect_h": round(2 * math.asin(math.sqrt(win)) - 2 * math.asin(math.sqrt(0.5)), 3),
                          "documents": sets, "power": round(hits / sets, 4), "power_se": _se(hits / sets, sets),
                          "stated_power_lower_bound": round(stated, 4)}), flush=True)


def real_nulls() -> None:
    for label, groups, n, sets in (("two groups, 50 pairs", ("a", "b"), 50, 30),
                                   ("three groups, 20 per group", ("a", "b", "c"), 20, 15)):
        started = time.perf_counter()
        significant = covered = intervals = 0
        count = max(4, int(sets * SCALE))
        with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
            for seed in range(count):
                directory = exchangeable_singles(Path(tmp) / f"set{seed}", seed=seed, groups=groups, n_per_group=n)
                base = [t for t in measure_image_set(directory, model=MODEL, seed=seed)["tests"] if t["variant"] is None]
                significant += any(t["p_holm"] is not None and t["p_holm"] < ALPHA for t in base)
                for test in base:
                    if test["kind"] == "preference" and test["estimate"] is not None:
                        intervals += 1
                        covered += test["ci"][0] <= 0.5 <= test["ci"][1]
        print(json.dumps({"bench": "inference", "case": f"{MODEL} null: {label}", "documents": count,
                          "familywise_false_positive_rate": round(significant / count, 4),
                          "fwer_se": _se(significant / count, count),
                          "preference_coverage": round(covered / intervals, 4),
                          "coverage_se": _se(covered / intervals, intervals), "nominal": "0.05 / 0.95",
                          "seconds": round(time.perf_counter() - started, 1)}), flush=True)


def simulated_edges() -> None:
    """Reused subjects, pooled subjects, position confounds, three groups per image, a pre-registered primary."""
    for label, n, reuse in (("2 + 2 subjects, pairs_per_image 5", 2, 5), ("3 + 3 subjects, pairs_per_image 5", 3, 5),
                            ("10 + 10 subjects, pairs_per_image 3", 10, 3)):
        figures = null_figures(range(20_000, 20_000 + _count(200)), n_per_group=n, pairs_per_image=reuse)
        print(json.dumps({"bench": "inference", "case": f"simulated null, reused subjects: {label}",
                          "documents": figures["documents"],
                          "familywise_false_positive_rate": round(figures["familywise_false_positive_rate"], 4),
                          "preference_coverage": round(figures["preference_coverage"], 4)}), flush=True)
    for label, kwargs in (("pooled subjects, 6 per group, 40 images", {"pool": 6}),
                          ("random positions, 40 images", {}), ("random positions, 12 images", {"n_images": 12}),
                          ("three groups in every image", {"groups": ("a", "b", "c")}),
                          ("group a always left, right half cluttered", {"first_left": True, "right_bonus": 1.0}),
                          ("group a always left, no position effect", {"first_left": True})):
        figures = probe_built_figures(range(30_000, 30_000 + _count(200)), **kwargs)
        print(json.dumps({"bench": "inference", "case": f"simulated probe-built: {label}", **figures}), flush=True)
    sets = range(40_000, 40_000 + _count(200))
    print(json.dumps({"bench": "inference", "case": "simulated effect: pair won 65%, 50 pairs",
                      "documents": len(sets), "power_preregistered_primary": primary_power(sets),
                      "power_in_the_holm_family": primary_power(sets, primary=None)}), flush=True)


def _real_figures(make, count: int) -> dict:
    significant = covered = intervals = zeros = confounded = 0
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        for seed in range(count):
            document = measure_image_set(make(Path(tmp) / f"set{seed}", seed), model=MODEL, seed=seed)
            base = [t for t in document["tests"] if t["variant"] is None]
            significant += any(t["p_holm"] is not None and t["p_holm"] < ALPHA and not t["kind"].startswith("position")
                               for t in base)
            zeros += sum(t["p_value"] == 0 for t in base)
            confounded += bool(document["confounds"])
            for test in base:
                if test["kind"] == "preference" and test["estimate"] is not None:
                    intervals += 1
                    covered += test["ci"][0] <= 0.5 <= test["ci"][1]
    return {"documents": count, "significant_group_test": significant, "naming_a_confound": confounded,
            "preference_coverage": round(covered / max(intervals, 1), 4), "zero_p_values": zeros}


def real_edges() -> None:
    count = max(4, int(40 * SCALE))
    cases = (
        ("reused subjects, 2 + 2, pairs_per_image 5",
         lambda out, seed: exchangeable_singles(out, seed=seed, n_per_group=2, pairs_per_image=5)),
        ("reused subjects, 10 + 10, pairs_per_image 3",
         lambda out, seed: exchangeable_singles(out, seed=seed, n_per_group=10, pairs_per_image=3)),
        ("pooled subjects, 6 per group, 40 images", lambda out, seed: pooled_composites(out, seed=seed)),
        ("three groups in every image, 30 images",
         lambda out, seed: pooled_composites(out, seed=seed, groups=("a", "b", "c"), pool=30, n_images=30)),
        ("group a always left, 30 images",
         lambda out, seed: pooled_composites(out, seed=seed, pool=30, n_images=30, first_left=True)),
    )
    for label, make in cases:
        started = time.perf_counter()
        figures = _real_figures(make, count)
        print(json.dumps({"bench": "inference", "case": f"{MODEL} null: {label}", **figures,
                          "seconds": round(time.perf_counter() - started, 1)}), flush=True)


def main() -> None:
    simulated_nulls()
    simulated_power()
    simulated_edges()
    real_nulls()
    real_edges()


if __name__ == "__main__":
    main()
