"""Rubric engine (DESIGN §6). First version: provisional score from the measurement.

The rubric/judge work replaces this module's internals; `provisional_score` and
`final_score` keep their signatures.
"""
from __future__ import annotations

DEFAULT_HARM = "under-representation"
HARM_BASE_POINTS = {
    "denigration": 20, "stereotyping": 20, "under-representation": 20, "ex-nomination": 20,
    "mis-recognition": 15, "erasure": 15, "economic-harm": 8,
}


def significant_tests(document: dict, alpha: float = 0.05) -> list[dict]:
    return [t for t in document.get("tests", []) if t.get("p_holm") is not None and t["p_holm"] < alpha]


def provisional_score(*, harm_type: str, document: dict) -> tuple[float, dict]:
    """Base points of the claimed harm × justification supported by the measurement."""
    harm = harm_type if harm_type in HARM_BASE_POINTS else DEFAULT_HARM
    base = HARM_BASE_POINTS[harm]
    substantiated = bool(significant_tests(document))
    justification = 1.25 if substantiated else 1.0
    value = round(base * justification, 2)
    return value, {
        "harm_type": harm, "base": base, "multipliers": {"justification": justification},
        "substantiated": substantiated, "formula": f"{base} × {justification} = {value}",
    }


def final_score(*, reviews, provisional: float | None) -> float | None:
    """Median of judges' scores; the provisional score when no judge rated."""
    values = sorted(r.score for r in reviews if r.score is not None and not r.conflict_of_interest)
    if not values:
        return provisional
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else round((values[mid - 1] + values[mid]) / 2, 2)
