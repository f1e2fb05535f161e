"""Replication on a fresh draw, in numbers: the two-stage procedure on exchangeable nulls and on
engineered effects.

Each simulated submission has a family of three preference tests of `N_UNITS` composites each (a
share against 1/2, an exact sign test per unit: what the sign-flip test is for ±1 outcomes). The
first draw is Holm-adjusted as the metrics document is; the platform's own verdict
(probekit.replication.compare) then judges an independent second draw of the same probe. Nulls
have every share at 1/2; an engineered effect moves one test's share to `p` and leaves the others
at 1/2. Prints one JSON line per scenario: {"bench": "replication", "scenario", "p", "submissions",
"first_stage", "replicated", ...}: for the nulls the shares ending significant after the first draw
and `replicated` after both (goal: `replicated` ≤ 0.005), for the effects the power of the first
stage alone and of the two stages.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probekit.replication import REPLICATED, claimed_tests, compare  # noqa: E402
from probekit.stats import holm  # noqa: E402

N_UNITS = 48
TESTS = 3
NULL_SUBMISSIONS = 20_000
EFFECT_SUBMISSIONS = 2_000
EFFECTS = (0.6, 0.65, 0.7, 0.75)
GOAL_NULL_REPLICATED = 0.005


def _p_values(wins: np.ndarray) -> np.ndarray:
    """Two-sided exact sign-test p-values of `wins` out of N_UNITS against 1/2."""
    low = scipy_stats.binom.cdf(wins, N_UNITS, 0.5)
    high = scipy_stats.binom.sf(wins - 1, N_UNITS, 0.5)
    return np.minimum(1.0, 2 * np.minimum(low, high))


def _document(wins_row: np.ndarray, p_row: np.ndarray, draw: int) -> dict:
    adjusted = holm(list(p_row))
    tests = []
    for k, (wins, p_value, p_holm) in enumerate(zip(wins_row, p_row, adjusted)):
        share = float(wins) / N_UNITS
        half = 1.96 * np.sqrt(max(share * (1 - share), 1e-9) / N_UNITS)
        tests.append({"id": f"preference:a>b@{k}", "kind": "preference", "variant": None, "estimate": share,
                      "ci": [share - half, share + half], "p_value": float(p_value), "p_holm": float(p_holm)})
    # every draw is fresh: its images are its own
    return {"tests": tests, "primary": None, "hashes": {"images": {"x": f"draw-{draw}"}}}


def simulate(rng: np.random.Generator, *, n: int, p: float) -> dict:
    shares = np.full(TESTS, 0.5)
    shares[0] = p
    first_wins, second_wins = rng.binomial(N_UNITS, shares, size=(n, TESTS)), rng.binomial(N_UNITS, shares, size=(n, TESTS))
    first_p, second_p = _p_values(first_wins), _p_values(second_wins)
    significant = replicated = 0
    for i in range(n):
        first = _document(first_wins[i], first_p[i], 2 * i)
        if not claimed_tests(first):
            continue
        significant += 1
        status, _rows = compare(first, _document(second_wins[i], second_p[i], 2 * i + 1))
        replicated += status == REPLICATED
    return {"submissions": n, "first_stage": significant / n, "replicated": replicated / n}


def main() -> int:
    rng = np.random.default_rng(20251)
    null = simulate(rng, n=NULL_SUBMISSIONS, p=0.5)
    print(json.dumps({"bench": "replication", "scenario": "null", "p": 0.5, "units": N_UNITS, "tests": TESTS, **null,
                      "goal_replicated": GOAL_NULL_REPLICATED, "met": null["replicated"] <= GOAL_NULL_REPLICATED,
                      "goal": "at most 0.5% of null submissions end replicated"}))
    for p in EFFECTS:
        effect = simulate(rng, n=EFFECT_SUBMISSIONS, p=p)
        print(json.dumps({"bench": "replication", "scenario": "effect", "p": p, "units": N_UNITS, "tests": TESTS,
                          **effect, "power_one_stage": effect["first_stage"], "power_two_stages": effect["replicated"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
