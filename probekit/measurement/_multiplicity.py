"""One family of p-values per submission: Holm's step-down, or a pre-registered primary tested
first with Holm behind it (docs/statistics.md)."""
from __future__ import annotations

from probekit import stats
from probekit.measurement._document import ALPHA


def _p_value_slots(test: dict):
    """(field of the adjusted value, raw p-value, evidence key) for each p-value a test carries."""
    fields = (("p_holm", "p_value"), ("mass_p_holm", "mass_p_value"))
    for (adjusted, raw), key in zip(fields, test.get("_evidence", [])):
        if raw in test:
            yield adjusted, test[raw], key


def apply_holm(tests: list[dict], *, also=(), primary: str | None = None) -> dict:
    """One Holm family over every p-value of the submission, returning the family's description.

    `also` are tests that stay out of the document but can mark it (the generalization models'
    tests). Tests with the same evidence (e.g. kept rates at two ratios whose crops keep the
    same regions) are one hypothesis in the family and share one adjusted value. With a
    pre-registered `primary` (a test id among `tests`), the primary is tested first at the full α
    and the others form the Holm family behind it (fixed-sequence gatekeeping): each other
    adjusted value is max(p of the primary, its Holm value), so none is significant unless the
    primary is, and the family-wise error stays at most α.
    """
    slots: dict[str, float] = {}
    members = []
    for test in [*tests, *also]:
        for adjusted, raw, key in _p_value_slots(test):
            test[adjusted] = None
            if raw is not None:
                slots.setdefault(key, raw)
                members.append((test, adjusted, key))
    gate = next((t for t in tests if t["id"] == primary and t.get("p_value") is not None), None)
    gate_key = gate["_evidence"][0] if gate else None
    keys = [k for k in slots if k != gate_key]
    adjusted_by_key = dict(zip(keys, stats.holm([slots[k] for k in keys]) if keys else []))
    if gate:
        adjusted_by_key = {k: max(v, gate["p_value"]) for k, v in adjusted_by_key.items()}
        adjusted_by_key[gate_key] = gate["p_value"]
    first_with: dict[str, str] = {}
    for test, adjusted, key in members:
        test[adjusted] = adjusted_by_key[key]
        owner = first_with.setdefault(key, test["id"])
        if adjusted == "p_holm" and owner != test["id"]:
            test["same_evidence_as"] = owner
    return {"size": len(slots), "p_values": len(members), "primary": gate["id"] if gate else None,
            "members": "every p_value and mass_p_value of the tests, including amplification and the "
                       "generalization models' tests; p-values from identical evidence count once"
                       + ("; the pre-registered primary is tested first at the full alpha, the rest by Holm "
                          "behind it" if gate else "")}


def multiplicity(family: dict) -> dict:
    """The document's `multiplicity`: which procedure set `p_holm`, at which α."""
    procedure = "fixed-sequence: primary at full alpha, then holm" if family["primary"] else "holm"
    return {"procedure": procedure, "alpha": ALPHA}
