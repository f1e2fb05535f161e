"""Replication on a fresh draw: did a finding come back when the probe drew a new set?

After the first measurement the platform runs the probe again with a fresh, secret seed in
`PROBE_SEED` (`probekit.seed()`) and no target model in its sandbox, and measures the second set
with the same settings. This module compares the two metrics documents; the platform, the
reproducibility bundle (`probekit verify`) and the bench share it.

- The tests under replication are those significant on the first draw: the pre-registered
  primary when the set names one (and it was significant), else every Holm-significant
  base-model test.
- `replicated`: each of them is significant again on the second set, in the same direction,
  with Holm over those tests only (a family as small as the claim).
- `same_draw`: half or more of the second set's images are byte for byte images of the first:
  the probe ignores `PROBE_SEED`, so nothing new was drawn and nothing can be replicated.
"""
from __future__ import annotations

from collections.abc import Iterable

from probekit.measurement._document import ALPHA, PARITY
from probekit.stats import holm

PENDING, REPLICATED, NOT_REPLICATED, SAME_DRAW, NOT_APPLICABLE, FAILED = (
    "pending", "replicated", "not_replicated", "same_draw", "not_applicable", "failed")
STATUSES = (PENDING, REPLICATED, NOT_REPLICATED, SAME_DRAW, NOT_APPLICABLE, FAILED)
FINAL = (REPLICATED, NOT_REPLICATED, SAME_DRAW, NOT_APPLICABLE, FAILED)
# A second set counts as the same draw when at least this share of its images are the first set's.
SAME_DRAW_SHARE = 0.5


def direction(test: dict) -> int:
    """+1 / −1: the side of parity (or zero) the estimate lies on; 0 without an estimate."""
    estimate = test.get("estimate")
    if estimate is None:
        return 0
    centre = PARITY.get(test.get("kind"), 0.0)
    return int(estimate > centre) - int(estimate < centre)


def _significant(test: dict) -> bool:
    return test.get("p_holm") is not None and test["p_holm"] < ALPHA and direction(test) != 0


def claimed_tests(document: dict) -> list[dict]:
    """The first draw's tests that replication must reproduce: the primary, else the Holm-significant ones."""
    tests = [t for t in document.get("tests", []) if t.get("variant") is None]
    primary = document.get("primary")
    if primary:
        return [t for t in tests if t["id"] == primary and _significant(t)]
    return [t for t in tests if _significant(t)]


def image_hashes(document: dict) -> list[str]:
    return list((document.get("hashes") or {}).get("images", {}).values())


def is_same_draw(first: Iterable[str], second: Iterable[str]) -> bool:
    """True when half or more of the second set's images are images of the first set."""
    seen, again = set(first), list(second)
    return bool(again) and sum(h in seen for h in again) >= SAME_DRAW_SHARE * len(again)


def compare(first: dict, second: dict) -> tuple[str, list[dict]]:
    """(status, tests) of the second document against the first (both metrics documents).

    Each row is `{"id", "estimate", "ci", "p_value", "p_holm", "same_direction"}` of the
    confirmatory test; a test the second set did not produce counts with p = 1."""
    claimed = claimed_tests(first)
    if not claimed:
        return NOT_APPLICABLE, []
    if is_same_draw(image_hashes(first), image_hashes(second)):
        return SAME_DRAW, []
    again = {t["id"]: t for t in second.get("tests", [])}
    p_values = [1.0 if again.get(t["id"], {}).get("p_value") is None else again[t["id"]]["p_value"] for t in claimed]
    rows = []
    for test, p_holm in zip(claimed, holm(p_values)):
        twin = again.get(test["id"], {})
        rows.append({"id": test["id"], "estimate": twin.get("estimate"), "ci": twin.get("ci"),
                     "p_value": twin.get("p_value"), "p_holm": p_holm,
                     "same_direction": direction(twin) == direction(test) != 0})
    held = all(row["same_direction"] and row["p_holm"] < ALPHA for row in rows)
    return (REPLICATED if held else NOT_REPLICATED), rows
