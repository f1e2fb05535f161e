"""The interval a leaderboard row carries: its finding's headline test, as a disparity.

The headline test is the one the probe registered as primary when it did, else the
Holm-significant test with the largest effect (the one the rubric's likelihood hint reads), else
the test with the smallest Holm p-value. Its estimate and 95% interval are written as the distance
from parity (0.5 for a win rate, 0 for a difference of rates), folded to its size: every test kind
then reads on one scale, proportion points, and two rows' intervals can be compared.
"""
from __future__ import annotations

from dataclasses import dataclass

from probekit.measurement._document import ALPHA, PARITY


@dataclass(frozen=True)
class HeadlineInterval:
    test: str
    estimate: float
    low: float
    high: float


def _usable(test: dict) -> bool:
    ci = test.get("ci") or [None, None]
    return test.get("estimate") is not None and ci[0] is not None and ci[1] is not None


def _headline(tests: list[dict], primary: str | None) -> dict | None:
    # The base model's own tests: a variant's measures another model, an amplification a change.
    usable = [t for t in tests if _usable(t) and t.get("variant") is None and t.get("kind") != "amplification"]
    chosen = next((t for t in usable if t["id"] == primary), None)
    if chosen is not None:
        return chosen
    significant = [t for t in usable if t.get("p_holm") is not None and t["p_holm"] < ALPHA
                   and t.get("effect_size") is not None]
    if significant:
        return max(significant, key=lambda t: (abs(t["effect_size"]), t["id"]))
    tested = [t for t in usable if t.get("p_holm") is not None]
    return min(tested, key=lambda t: (t["p_holm"], t["id"])) if tested else None


def headline_interval(document: dict | None) -> HeadlineInterval | None:
    """The headline test's disparity and its 95% interval, in proportion points (None: no test has one)."""
    test = _headline((document or {}).get("tests", []), (document or {}).get("primary"))
    if test is None:
        return None
    parity = PARITY.get(test["kind"], 0.0)
    gap, low, high = test["estimate"] - parity, test["ci"][0] - parity, test["ci"][1] - parity
    if low <= 0.0 <= high:  # the interval holds parity: the disparity may be nil
        folded = (0.0, max(-low, high))
    else:
        folded = tuple(sorted((abs(low), abs(high))))
    return HeadlineInterval(test=test["id"], estimate=abs(gap), low=folded[0], high=folded[1])


def overlaps(first: tuple[float, float] | None, second: tuple[float, float] | None) -> bool:
    """Two closed intervals share a point (a missing interval overlaps nothing)."""
    return first is not None and second is not None and first[0] <= second[1] and second[0] <= first[1]
