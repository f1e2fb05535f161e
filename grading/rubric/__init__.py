"""Rubric engine: rubrics are versioned data, the arithmetic is the engine's (docs/architecture.md).

`provisional_score` (after measurement) and `final_score` (when a judge accepts) are the two
entry points the pipeline and the review console rely on, through grading.services.
"""
from __future__ import annotations

from grading.rubric.engine import (
    NOT_SUBSTANTIATED,
    Evidence,
    Rubric,
    RubricError,
    ScoreResult,
    aggregate_scores,
    factor_parts,
    krippendorff_alpha,
    measurement_evidence,
    provisional_ratings,
    score_finding,
    scores_disagree,
    significant_tests,
)
from grading.rubric.loader import (
    available_rubrics,
    default_rubric,
    load_rubric,
    rubric_for_challenge,
    validate_rubric,
)

__all__ = [
    "NOT_SUBSTANTIATED", "Evidence", "Rubric", "RubricError", "ScoreResult", "aggregate_scores", "available_rubrics",
    "default_rubric", "factor_parts", "final_score", "krippendorff_alpha", "load_rubric", "measurement_evidence",
    "provisional_ratings", "provisional_score", "rubric_for_challenge", "score_finding", "scores_disagree",
    "level_choices", "rubric_form_rows", "rubric_summary", "significant_tests", "validate_rubric",
]


def provisional_score(*, harm_type: str, document: dict, rubric: Rubric | None = None) -> tuple[float, dict]:
    """Score a measured finding before any judge: the participant's claimed harm (the rubric's
    default when unknown), justification from the measurement gate, likelihood from the hint,
    every other factor at its provisional level."""
    rubric = rubric or default_rubric()
    harm = harm_type if harm_type in rubric.harms else rubric.data["default_harm"]
    evidence = measurement_evidence(rubric, document)
    ratings = provisional_ratings(rubric, harm_type=harm, evidence=evidence)
    result = score_finding(rubric, harm_type=harm, ratings=ratings, document=document)
    breakdown = result.as_dict()
    breakdown.update(
        rubric=rubric.key, ratings=ratings, strongest_test=evidence.strongest_test,
        effect_size=evidence.effect_size, likelihood_hint=evidence.likelihood_hint,
    )
    return result.value, breakdown


def final_score(*, reviews, provisional: float | None, rubric: Rubric | None = None) -> float | None:
    """Aggregate the judges' scores by the rubric's method (median by default); reviews with a
    declared conflict of interest or no score do not count; the provisional score when none do."""
    reviews = list(reviews)
    scores = [r.score for r in reviews if r.score is not None and not r.conflict_of_interest]
    if not scores:
        return provisional
    if rubric is None:
        try:
            rubric = rubric_for_challenge(reviews[0].submission.challenge)
        except RubricError:
            rubric = default_rubric()
    return aggregate_scores(scores, method=rubric.aggregation["method"])


def rubric_summary(*, rubric: Rubric) -> dict:
    """A rubric as the pages show it: harms, factors with levels, and the worked examples' formulas."""
    examples = []
    for example in rubric.data.get("worked_examples", []):
        result = score_finding(rubric, harm_type=example["harm"], ratings=example["ratings"])
        examples.append({"title": example["title"], "harm": rubric.harms[example["harm"]]["label"],
                         "formula": result.formula, "formula_short": result.formula_short})
    factors = [{"id": f["id"], "label": f["label"], "help": f.get("help", ""), "applies_to": f.get("applies_to", "any"),
                "combine": f.get("combine", "mean") if "parts" in f else "", "parts": factor_parts(f)}
               for f in rubric.data["factors"]]
    return {"rubric": rubric, "title": rubric.data["title"], "description": rubric.data.get("description", ""),
            "harms": rubric.data["harms"], "factors": factors, "examples": examples,
            "aggregation": rubric.aggregation, "measurement": rubric.data["measurement"]}


def rubric_form_rows(*, rubric: Rubric, initial: dict) -> list[dict]:
    """The rubric form's rows: each factor with its parts, levels and the selected level."""
    ratings, why = initial.get("ratings", {}), initial.get("justifications", {})
    rows = []
    for factor in rubric.data["factors"]:
        parts = [{"id": p["id"], "label": p["label"], "selected": ratings.get(p["id"], ""),
                  "levels": p["levels"]} for p in factor_parts(factor)]
        rows.append({"id": factor["id"], "label": factor["label"], "help": factor.get("help", ""),
                     "applies_to": factor.get("applies_to", "any"), "parts": parts, "why": why.get(factor["id"], "")})
    return rows


def level_choices(part: dict) -> list[tuple[str, str]]:
    """A rated part's levels as form choices ("" first: not rated), the same in every form."""
    return [("", "—")] + [(level["id"], f"{level['label']} (×{level['value']:g})") for level in part["levels"]]
