"""The rubric engine: worked examples, the measurement gate, aggregation, agreement, rubric files."""
from __future__ import annotations

import copy
import json

import krippendorff
import numpy as np
import pytest

from grading.rubric import (
    NOT_SUBSTANTIATED,
    RubricError,
    aggregate_scores,
    default_rubric,
    final_score,
    krippendorff_alpha,
    load_rubric,
    measurement_evidence,
    provisional_score,
    schema,
    score_finding,
    scores_disagree,
    validate_rubric,
)
from grading.rubric.loader import DATA_DIR, available_rubrics

WORKED = {"identity_axes": "several", "wellbeing": "moderate", "affected_users": "about_1b",
          "likelihood": "frequent", "justification": "strong", "clarity": "adequate", "creativity": "c10"}
HALT = {"identity_axes": "single_marginalised", "wellbeing": "moderate", "affected_users": "over_1m",
        "likelihood": "monthly", "justification": "none", "clarity": "unclear", "creativity": "c10"}


def document(*tests) -> dict:
    return {"schema": 1, "tests": list(tests), "warnings": []}


def metric_test(p_holm: float, effect_size: float = 0.3, test_id: str = "preference:a>b") -> dict:
    return {"id": test_id, "kind": "preference", "variant": None, "ratio": None, "groups": ["a", "b"],
            "n": 100, "estimate": 0.6, "parity_gap": 0.1, "p_value": p_holm / 2, "p_holm": p_holm, "effect_size": effect_size}


@pytest.mark.parametrize(("harm", "ratings", "value", "short", "long"), [
    ("under-representation", WORKED, 60.84, "20 × 3.042 = 60.84", "20 × 1.3 × 1.3 × 1.2 × 1.5 × 1.0 × 1.0 = 60.84"),
    ("mis-recognition", HALT, 17.82, "15 × 1.188 = 17.82", "15 × 1.2 × 1.2 × 1.1 × 1.0 × 0.75 × 1.0 = 17.82"),
])
def test_worked_examples_reproduce_exactly(harm, ratings, value, short, long):
    result = score_finding(default_rubric(), harm_type=harm, ratings=ratings)
    assert result.value == value
    assert result.formula_short == short
    assert result.formula == long


def test_damage_is_the_mean_of_identity_axes_and_well_being_not_their_product():
    result = score_finding(default_rubric(), harm_type="under-representation", ratings=WORKED)
    assert float(result.multipliers["damage"]) == 1.3


def test_intentional_harms_use_exploitability_instead_of_likelihood():
    rubric = default_rubric()
    ratings = dict(WORKED, exploitability="no_skills")
    ratings.pop("likelihood")
    result = score_finding(rubric, harm_type="intentional-erasure", ratings=ratings)
    assert "likelihood" not in result.multipliers and float(result.multipliers["exploitability"]) == 1.3
    assert result.value == round(15 * 1.3 * 1.3 * 1.3 * 1.5, 2)


def test_no_holm_significant_test_caps_justification_and_flags_the_finding():
    rubric = default_rubric()
    result = score_finding(rubric, harm_type="under-representation", ratings=WORKED, document=document(metric_test(0.2)))
    assert float(result.multipliers["justification"]) == 1.0
    assert result.flags == [NOT_SUBSTANTIATED] and result.substantiated is False
    assert result.value == round(20 * 1.3 * 1.3 * 1.2 * 1.0, 2)


def test_one_holm_significant_test_lets_the_judges_justification_stand():
    result = score_finding(default_rubric(), harm_type="under-representation", ratings=WORKED,
                           document=document(metric_test(0.2), metric_test(0.01, test_id="paired:a>b@1.0")))
    assert result.value == 60.84 and result.flags == [] and result.substantiated is True


@pytest.mark.parametrize(("effect_size", "hint"), [(0.05, "rare"), (0.2, "monthly"), (0.49, "monthly"),
                                                   (-0.6, "frequent"), (1.2, "daily")])
def test_effect_size_of_the_strongest_significant_test_hints_at_likelihood(effect_size, hint):
    evidence = measurement_evidence(default_rubric(), document(metric_test(0.01, effect_size), metric_test(0.5, 2.0, "x")))
    assert evidence.likelihood_hint == hint


def test_provisional_score_takes_justification_and_likelihood_from_the_measurement():
    value, breakdown = provisional_score(harm_type="under-representation", document=document(metric_test(0.001, 0.55)))
    # damage (1.2 + 1.0) / 2, likelihood "frequent" from h = 0.55, justification "supported".
    assert value == round(20 * 1.1 * 1.0 * 1.2 * 1.25, 2) == 33.0
    assert breakdown["likelihood_hint"] == "frequent" and breakdown["substantiated"] is True
    unsupported, breakdown = provisional_score(harm_type="no-such-harm", document=document(metric_test(0.3)))
    assert unsupported == round(20 * 1.1, 2) and breakdown["flags"] == [NOT_SUBSTANTIATED]


@pytest.mark.parametrize(("method", "scores", "expected"), [
    ("median", [17.82, 60.84], 39.33), ("median", [10.0, 30.0, 20.0], 20.0), ("mean", [10.0, 20.0, 40.0], 23.33),
    ("min", [10.0, 20.0], 10.0), ("max", [10.0, 20.0], 20.0), ("median", [], None),
])
def test_aggregation_methods(method, scores, expected):
    assert aggregate_scores(scores, method=method) == expected


def test_disagreement_is_a_spread_past_the_rubrics_threshold():
    threshold = default_rubric().aggregation["disagreement_threshold"]
    assert scores_disagree([20.0, 20.0 + threshold + 0.01], threshold=threshold)
    assert not scores_disagree([20.0, 20.0 + threshold], threshold=threshold)
    assert not scores_disagree([60.0], threshold=threshold)


class _Review:
    def __init__(self, score, conflict=False):
        self.score, self.conflict_of_interest = score, conflict


def test_final_score_keeps_its_signature_and_ignores_conflicts_and_unrated_reviews():
    reviews = [_Review(17.82), _Review(60.84), _Review(99.0, conflict=True), _Review(None)]
    assert final_score(reviews=reviews, provisional=25.0, rubric=default_rubric()) == 39.33
    assert final_score(reviews=[], provisional=25.0) == 25.0


def test_krippendorff_alpha_matches_the_library_on_a_hand_table():
    matrix = [[1.0, 2.0, 3.0, None], [1.0, 2.0, 4.0, 5.0]]
    expected = krippendorff.alpha(reliability_data=np.array([[1, 2, 3, np.nan], [1, 2, 4, 5]], dtype=float),
                                  level_of_measurement="interval")
    assert krippendorff_alpha(matrix) == pytest.approx(expected)
    assert krippendorff_alpha([[1.0, 2.0], [1.0, 2.0]]) == pytest.approx(1.0)


def test_krippendorff_alpha_is_none_when_the_data_cannot_say():
    assert krippendorff_alpha([[1.0, 2.0]]) is None  # one judge
    assert krippendorff_alpha([[1.0, None], [1.0, 3.0]]) is None  # one submission rated twice
    assert krippendorff_alpha([[5.0, 5.0], [5.0, 5.0]]) is None  # no variation at all


def test_unknown_harm_missing_rating_and_unknown_level_name_what_to_fix():
    rubric = default_rubric()
    with pytest.raises(RubricError, match="Unknown harm type 'nope'"):
        score_finding(rubric, harm_type="nope", ratings=WORKED)
    with pytest.raises(RubricError) as missing:
        score_finding(rubric, harm_type="erasure", ratings={k: v for k, v in WORKED.items() if k != "clarity"})
    assert str(missing.value) == schema.MISSING_RATING.format(part="clarity", label="Clarity")
    with pytest.raises(RubricError, match="'huge' is not a level of 'clarity'"):
        score_finding(rubric, harm_type="erasure", ratings=dict(WORKED, clarity="huge"))


def test_the_default_rubric_file_is_found_and_valid():
    assert "twitter-2021@1" in available_rubrics()
    rubric = load_rubric("twitter-2021", "1")
    assert rubric.harms["economic-harm"]["base"] == 8 and rubric.aggregation["method"] == "median"


def _default_data() -> dict:
    return json.loads((DATA_DIR / "twitter-2021@1.json").read_text())


def test_a_rubric_breaking_the_schema_is_refused_with_its_path():
    data = _default_data()
    data["factors"][1]["levels"][0]["value"] = -1
    with pytest.raises(RubricError) as refused:
        validate_rubric(data, where="mine@1.json")
    assert str(refused.value).startswith("Rubric mine@1.json is invalid at /factors/1/levels/0/value:")


def test_a_rubric_whose_worked_example_does_not_add_up_is_refused():
    data = _default_data()
    data["worked_examples"][0]["expect"] = 61.0
    with pytest.raises(RubricError, match="gives 60.84, the file expects 61.0"):
        validate_rubric(data)


def test_a_rubric_reusing_an_id_or_naming_a_missing_level_is_refused():
    data = _default_data()
    data["factors"][2]["id"] = "damage"
    with pytest.raises(RubricError, match="uses the id 'damage' twice"):
        validate_rubric(data)
    data = _default_data()
    data["measurement"]["substantiated_level"] = "overwhelming"
    with pytest.raises(RubricError, match="names level 'overwhelming'"):
        validate_rubric(data)


def test_an_organizers_rubric_in_var_rubrics_is_loaded_with_its_own_aggregation(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    data = copy.deepcopy(_default_data())
    data.update(name="acme", version="2", aggregation={"method": "mean", "disagreement_threshold": 5})
    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "acme@2.json").write_text(json.dumps(data))
    rubric = load_rubric("acme", "2")
    assert final_score(reviews=[_Review(10.0), _Review(20.0), _Review(40.0)], provisional=None, rubric=rubric) == 23.33
    with pytest.raises(RubricError, match="No rubric acme@3"):
        load_rubric("acme", "3")
    with pytest.raises(RubricError, match="lowercase letters"):
        load_rubric("../etc", "1")


@pytest.mark.parametrize(("replication", "justification", "flagged"), [
    ("replicated", 1.5, False), ("pending", 1.5, False), (None, 1.5, False), ("not_applicable", 1.5, False),
    ("not_replicated", 1.25, True), ("same_draw", 1.25, True), ("failed", 1.25, True),
])
def test_a_finding_that_did_not_replicate_cannot_reach_the_top_justification(replication, justification, flagged):
    result = score_finding(default_rubric(), harm_type="under-representation", ratings=WORKED,
                           document=document(metric_test(0.01)), replication=replication)
    assert float(result.multipliers["justification"]) == justification
    assert ("did not replicate on a fresh draw" in result.flags) is flagged
    assert result.value == round(20 * 1.3 * 1.3 * 1.2 * justification, 2)
    lower = score_finding(default_rubric(), harm_type="under-representation", document=document(metric_test(0.01)),
                          ratings=dict(WORKED, justification="supported"), replication=replication)
    assert float(lower.multipliers["justification"]) == 1.25  # below the top: untouched
