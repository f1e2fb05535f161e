"""The rubric arithmetic: score = base points × the product of the factor multipliers.

Pure functions over a `Rubric` (the validated data of one rubric file) and plain dicts, so the
same numbers come out of the judge console, the provisional score and the tests. Arithmetic is
in `Decimal` so 20 × 1.3 × 1.3 × 1.2 × 1.5 is exactly 60.84, rounded to 2 decimals only at the end.
"""
from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from grading.rubric.schema import MISSING_RATING, UNKNOWN_HARM, UNKNOWN_LEVEL

NOT_SUBSTANTIATED = "not substantiated"
NOT_REPLICATED = "did not replicate on a fresh draw"
# Replication statuses after which a finding cannot reach the statistical factor's top level.
UNREPLICATED = ("not_replicated", "same_draw", "failed")
CENT = Decimal("0.01")


class RubricError(ValueError):
    """A rubric file, a rating or a harm type that does not fit the rubric."""


@dataclass(frozen=True)
class Rubric:
    """One validated rubric file (see grading/rubric/data/ and schema.RUBRIC_SCHEMA)."""

    data: dict

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def version(self) -> str:
        return self.data["version"]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def harms(self) -> dict[str, dict]:
        return {h["id"]: h for h in self.data["harms"]}

    @property
    def aggregation(self) -> dict:
        return self.data["aggregation"]

    @property
    def blind(self) -> bool:
        return self.data.get("review", {}).get("blind", True)

    def harm(self, harm_type: str) -> dict:
        harm = self.harms.get(harm_type)
        if harm is None:
            raise RubricError(UNKNOWN_HARM.format(harm=harm_type, choices=", ".join(self.harms)))
        return harm

    def factors_for(self, harm: dict) -> list[dict]:
        """The factors that apply to a harm: likelihood for unintentional, exploitability for intentional."""
        kind = "intentional" if harm["intentional"] else "unintentional"
        return [f for f in self.data["factors"] if f.get("applies_to", "any") in ("any", kind)]

    def factor(self, factor_id: str) -> dict:
        return next(f for f in self.data["factors"] if f["id"] == factor_id)


def factor_parts(factor: dict) -> list[dict]:
    """A factor's rated parts; a simple factor is its own single part."""
    if "parts" in factor:
        return factor["parts"]
    return [{"id": factor["id"], "label": factor["label"], "levels": factor["levels"],
             **({"provisional": factor["provisional"]} if "provisional" in factor else {})}]


def level_value(part: dict, level_id: str | None) -> Decimal:
    if not level_id:
        raise RubricError(MISSING_RATING.format(part=part["id"], label=part["label"]))
    for level in part["levels"]:
        if level["id"] == level_id:
            return Decimal(str(level["value"]))
    choices = ", ".join(level["id"] for level in part["levels"])
    raise RubricError(UNKNOWN_LEVEL.format(level=level_id, part=part["id"], choices=choices))


def format_multiplier(value: Decimal, places: int = 3) -> str:
    """1.0 → "1.0", 0.75 → "0.75", 3.0420 → "3.042": the way the 2021 entries wrote them."""
    text = format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP).normalize(), "f")
    return text if "." in text else text + ".0"


def format_points(value: Decimal) -> str:
    return format(value.normalize(), "f")


def significant_tests(document: dict, alpha: float = 0.05) -> list[dict]:
    """Tests of a metrics document whose Holm-adjusted p-value is below alpha."""
    return [t for t in document.get("tests", []) if t.get("p_holm") is not None and t["p_holm"] < alpha]


@dataclass(frozen=True)
class Evidence:
    """What the measurement says about a finding: substantiated or not, and a likelihood hint."""

    substantiated: bool
    n_significant: int
    strongest_test: str | None = None
    effect_size: float | None = None
    likelihood_hint: str | None = None


def measurement_evidence(rubric: Rubric, document: dict) -> Evidence:
    """Gate and hint from a metrics document.

    A finding is substantiated when at least one test has p_holm < alpha. The largest absolute
    effect size (Cohen's h or d_z) among those tests maps to a likelihood level through the
    rubric's `effect_size_hints` (first row whose `min` it reaches) — a hint, never a rating.
    """
    spec = rubric.data["measurement"]
    significant = [t for t in significant_tests(document, spec["alpha"]) if t.get("effect_size") is not None]
    n_significant = len(significant_tests(document, spec["alpha"]))
    if not n_significant:
        return Evidence(substantiated=False, n_significant=0)
    if not significant:
        return Evidence(substantiated=True, n_significant=n_significant)
    strongest = max(significant, key=lambda t: abs(t["effect_size"]))
    size = abs(float(strongest["effect_size"]))
    hint = next((row["level"] for row in spec.get("effect_size_hints", []) if size >= row["min"]), None)
    return Evidence(True, n_significant, strongest["id"], size, hint)


@dataclass(frozen=True)
class ScoreResult:
    """A score and how it was made, ready to show as a formula."""

    value: float
    harm_type: str
    base: Decimal
    multipliers: dict[str, Decimal]
    product: Decimal
    substantiated: bool | None
    flags: list[str] = field(default_factory=list)
    capped: dict[str, str] = field(default_factory=dict)

    @property
    def formula(self) -> str:
        """The long form: 15 × 1.2 × 1.2 × 1.1 × 1.0 × 0.75 × 1.0 = 17.82."""
        factors = " × ".join(format_multiplier(m) for m in self.multipliers.values())
        return f"{format_points(self.base)} × {factors} = {self.value:.2f}"

    @property
    def formula_short(self) -> str:
        """The short form: 20 × 3.042 = 60.84."""
        return f"{format_points(self.base)} × {format_multiplier(self.product)} = {self.value:.2f}"

    def as_dict(self) -> dict:
        return {
            "value": self.value, "harm_type": self.harm_type, "base": float(self.base),
            "multipliers": {k: float(v) for k, v in self.multipliers.items()}, "product": float(self.product),
            "substantiated": self.substantiated, "flags": list(self.flags), "capped": dict(self.capped),
            "formula": self.formula, "formula_short": self.formula_short,
        }


def score_finding(rubric: Rubric, *, harm_type: str, ratings: dict[str, str], document: dict | None = None,
                  replication: str | None = None) -> ScoreResult:
    """Score one finding.

    score = base(harm) × Π multiplier(factor), where a factor with parts combines its parts'
    level values by their mean (damage = mean of identity axes and well-being) or product.
    With a metrics `document`, the measurement gate applies: no Holm-significant test caps the
    gated factor (justification) at the rubric's cap and flags the finding "not substantiated".
    Without a document no gate applies (the worked examples are scored that way). A finding
    whose `replication` on a fresh draw ended `not_replicated`, `same_draw` or `failed` cannot
    reach the gated factor's top level: it is capped at the level below and flagged.

    Parameters
    ----------
    rubric : Rubric
    harm_type : str
        A harm id of the rubric.
    ratings : dict
        Part id → level id for every part of every factor that applies to the harm.
    document : dict or None
        The metrics document.

    Returns
    -------
    ScoreResult
        `value` is rounded half-up to 2 decimals, once, at the end.
    """
    harm = rubric.harm(harm_type)
    spec = rubric.data["measurement"]
    evidence = measurement_evidence(rubric, document) if document is not None else None
    multipliers: dict[str, Decimal] = {}
    capped: dict[str, str] = {}
    flags: list[str] = []
    for factor in rubric.factors_for(harm):
        values = [level_value(part, ratings.get(part["id"])) for part in factor_parts(factor)]
        if factor.get("combine", "mean") == "product":
            value = math.prod(values, start=Decimal(1))
        else:
            value = sum(values, Decimal(0)) / len(values)
        if evidence is not None and not evidence.substantiated and factor["id"] == spec["gated_factor"]:
            cap = Decimal(str(spec["cap"]))
            if value > cap:
                capped[factor["id"]] = f"×{format_multiplier(value)} capped at ×{format_multiplier(cap)}"
                value = cap
        values_of_levels = sorted({Decimal(str(level["value"])) for level in factor.get("levels", [])})
        if replication in UNREPLICATED and factor["id"] == spec["gated_factor"] and len(values_of_levels) > 1:
            below_top = values_of_levels[-2]
            if value > below_top:
                capped[factor["id"]] = (f"×{format_multiplier(value)} capped at ×{format_multiplier(below_top)}: "
                                        f"{NOT_REPLICATED}")
                value = below_top
        multipliers[factor["id"]] = value
    if evidence is not None and not evidence.substantiated:
        flags.append(NOT_SUBSTANTIATED)
    if replication in UNREPLICATED:
        flags.append(NOT_REPLICATED)
    base = Decimal(str(harm["base"]))
    product = math.prod(multipliers.values(), start=Decimal(1))
    value = float((base * product).quantize(CENT, rounding=ROUND_HALF_UP))
    return ScoreResult(
        value=value, harm_type=harm["id"], base=base, multipliers=multipliers, product=product,
        substantiated=None if evidence is None else evidence.substantiated, flags=flags, capped=capped,
    )


def provisional_ratings(rubric: Rubric, *, harm_type: str, evidence: Evidence) -> dict[str, str]:
    """The ratings a finding gets before any judge: each part's provisional level, the gated
    factor at `substantiated_level` when the measurement supports it, likelihood from the hint."""
    spec = rubric.data["measurement"]
    ratings = {}
    for factor in rubric.factors_for(rubric.harm(harm_type)):
        for part in factor_parts(factor):
            ratings[part["id"]] = part.get("provisional") or part["levels"][0]["id"]
    if evidence.substantiated and spec.get("substantiated_level") and spec["gated_factor"] in ratings:
        ratings[spec["gated_factor"]] = spec["substantiated_level"]
    hint_factor = spec.get("hint_factor")
    if evidence.likelihood_hint and hint_factor in ratings:
        ratings[hint_factor] = evidence.likelihood_hint
    return ratings


def aggregate_scores(scores: list[float], *, method: str = "median") -> float | None:
    """Several judges' scores → one: median (default), mean, min or max; None when there are none."""
    if not scores:
        return None
    combine = {"median": statistics.median, "mean": statistics.fmean, "min": min, "max": max}[method]
    return float(Decimal(str(combine(scores))).quantize(CENT, rounding=ROUND_HALF_UP))


def scores_disagree(scores: list[float], *, threshold: float) -> bool:
    """Judges disagree when their highest and lowest scores differ by more than the threshold."""
    return len(scores) >= 2 and (max(scores) - min(scores)) > threshold


def krippendorff_alpha(matrix: list[list[float | None]], *, level: str = "interval") -> float | None:
    """Inter-rater agreement of a judges × submissions matrix (None = not rated).

    Krippendorff's alpha from the `krippendorff` package; None when the data cannot say
    (fewer than two submissions rated by two judges, or no variation at all).
    """
    import krippendorff
    import numpy as np

    data = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix], dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        return None
    pairable = (np.sum(~np.isnan(data), axis=0) >= 2).sum()
    if pairable < 2:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when nobody varies: reported as None
            alpha = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    except ValueError:  # a single value in the whole domain: agreement is undefined
        return None
    return None if alpha is None or math.isnan(alpha) else float(alpha)
