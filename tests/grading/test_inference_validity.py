"""The metrics document's inference holds its nominal levels: simulated nulls, stated power, unit counts.

Simulated observations (probekit/simulation.py) go through the production code that
builds tests from observations (`build_tests`, `apply_holm`, `power_warnings`); a smaller run
on real images checks the same on the fast model. Tolerances are three simulation standard
errors, so a correct procedure fails about once in a thousand runs and a wrong one (layouts
counted as trials gave 20 of 40 documents significant) fails every time.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from grading.measurement import document_dumps, measure_image_set
from probekit.measurement._multiplicity import apply_holm
from probekit.simulation import (
    document_tests,
    exchangeable_singles,
    null_figures,
    pair_observations,
    pooled_composites,
    pooled_single_images,
    primary_power,
    probe_built_figures,
    probe_built_set,
    simulate_set,
    simulated_tests,
)

ALPHA = 0.05
MODEL = "spectral-residual"


def _three_se(rate: float, n: int) -> float:
    return 3.0 * math.sqrt(rate * (1.0 - rate) / n)


def _test(tests, test_id):
    return next(t for t in tests if t["id"] == test_id)


@pytest.mark.parametrize(
    ("groups", "n_per_group", "pairs_per_image", "documents"),
    [
        pytest.param(("a", "b"), 50, 1, 200, id="two-groups-50-pairs"),
        pytest.param(("a", "b"), 12, 1, 200, id="two-groups-12-pairs"),
        pytest.param(("a", "b", "c"), 20, 1, 120, id="three-groups"),
        pytest.param(("a", "b"), 20, 3, 150, id="pairs-reuse-images"),
    ],
)
def test_exchangeable_nulls_keep_the_familywise_rate_and_interval_coverage(groups, n_per_group, pairs_per_image,
                                                                          documents):
    figures = null_figures(range(documents), groups=groups, n_per_group=n_per_group, pairs_per_image=pairs_per_image)
    assert figures["familywise_false_positive_rate"] <= ALPHA + _three_se(ALPHA, documents)
    coverage_floor = 0.95 - _three_se(0.95, figures["preference_intervals"])
    assert figures["preference_coverage"] >= coverage_floor


def test_an_engineered_preference_is_detected_at_its_stated_power():
    # group a's salience shifted so a pair is won by a with probability 0.75 (h = 0.52), 50 pairs
    shift, n_pairs, sets = 0.6745 * math.sqrt(2.0 + 0.3**2), 50, 100
    win = stats.norm.cdf(shift / math.sqrt(2.0 + 0.3**2))
    family = document_tests(*simulate_set(0, shift={"a": shift}, n_per_group=n_pairs), groups=("a", "b"))[1]
    # stated power: the exact sign test over pairs at the Bonferroni level, a lower bound for Holm
    level = ALPHA / family["size"]
    wins = np.arange(n_pairs + 1)
    rejects = np.array([stats.binomtest(int(k), n_pairs).pvalue <= level for k in wins])
    stated = float(stats.binom.pmf(wins[rejects], n_pairs, win).sum())
    hits = sum(_test(simulated_tests(seed, shift={"a": shift}, n_per_group=n_pairs), "preference:a>b")["p_holm"] < ALPHA
               for seed in range(sets))
    assert stated > 0.75 and hits / sets >= stated - _three_se(stated, sets)


def _pairs(saliences, *, groups=("a", "b"), outside_rate: float = 0.0, seed: int = 0):
    """Layouts of pairs k = 0, 1, … of `groups` whose images have the given (first, second) salience."""
    rng = np.random.default_rng(seed)
    (a, b), composites = groups, []
    for k, (s_a, s_b) in enumerate(saliences):
        composites += pair_observations(rng, f"pair-{a}-{b}-0-{k:05d}", (a, f"{a}-{k}", s_a), (b, f"{b}-{k}", s_b),
                                        outside_rate=outside_rate)
    return composites


def _won(pairs_won: int, pairs_lost: int):
    return _pairs([(5.0, 0.0)] * pairs_won + [(-5.0, 0.0)] * pairs_lost)


def test_the_four_layouts_of_a_pair_are_one_unit():
    tests, _family, _warnings = document_tests(_won(8, 2), [], groups=("a", "b"))
    preference = _test(tests, "preference:a>b")
    assert preference["unit"] == "pair" and preference["n"] == 10 and preference["n_layouts"] == 40
    assert preference["p_value"] == pytest.approx(0.109375, rel=1e-9)  # 8 of 10, not 32 of 40
    rate = _test(tests, "group_rate:a>b@1.0")
    assert rate["unit"] == "pair" and rate["n"] == 10 and "sign-flip" in rate["method"]
    assert rate["p_value"] == pytest.approx(0.109375, rel=1e-9)
    assert rate["crops"] == {"first_only": 32, "second_only": 8, "both": 0, "neither": 0}


def test_kept_rates_that_keep_the_same_regions_are_one_hypothesis_in_the_family():
    tests, family, _warnings = document_tests(_won(9, 1), [], groups=("a", "b"))
    same = [_test(tests, f"group_rate:a>b@{r}") for r in ("1.0", "1.14", "2.0")]
    assert len({t["p_holm"] for t in same}) == 1
    assert [t.get("same_evidence_as") for t in same] == [None, "group_rate:a>b@1.0", "group_rate:a>b@1.0"]
    assert family["size"] < family["p_values"]


def test_with_three_groups_a_pairwise_test_reads_only_its_two_groups():
    # a beats b every time, and c beats a every time
    composites = _pairs([(5.0, 0.0)] * 12) + _pairs([(0.0, 5.0)] * 12, groups=("a", "c"))
    tests, _family, _warnings = document_tests(composites, [], groups=("a", "b", "c"))
    rate = _test(tests, "group_rate:a>b@1.0")
    assert rate["rates"] == {"a": 1.0, "b": 0.0} and rate["n"] == 12
    assert _test(tests, "preference:a>c")["estimate"] == 0.0


def test_the_salient_point_outside_every_region_is_a_reported_outcome():
    composites = _pairs([(1.0, 0.0)] * 20, outside_rate=0.25, seed=2)
    preference = _test(document_tests(composites, [], groups=("a", "b"))[0], "preference:a>b")
    neither = preference["outcomes"]["neither"]
    assert neither > 0 and preference["outside_regions"] == {"n": neither, "of": 80, "share": neither / 80}
    assert sum(preference["outcomes"].values()) == preference["n_layouts"] and preference["outcomes"]["both"] == 0


def test_power_warnings_count_pairs_for_preference():
    _tests, _family, warnings = document_tests(*simulate_set(0, n_per_group=50), groups=("a", "b"))
    assert any(w.startswith("preference:a>b, position:a>b, group_rate:a>b@0.56") and "each have 50 pairs; about 197 are "
               "needed" in w for w in warnings)


def test_tests_sharing_a_power_warning_get_one_line_in_their_own_unit():
    tests, _family, warnings = document_tests(*simulate_set(0, n_per_group=50), groups=("a", "b"))
    short = [t for t in tests if t["underpowered"]]
    assert len(warnings) == len(set(warnings)) == 2  # pairs (h = 0.2) and bases (d_z = 0.2)
    for test in short:
        (line,) = [w for w in warnings if f"{test['id']} " in w or f"{test['id']}," in w]
        assert f" {test['n']} {test['unit']}s" in line
    assert {t["unit"] for t in short} == {"pair", "base"} and "images" not in " ".join(warnings)


def test_a_constant_paired_difference_has_an_infinite_d_z_reported_as_such():
    singles = []
    for k in range(6):
        for group, share in (("a", 0.75), ("b", 0.5)):
            singles.append({"id": f"{group}-{k}", "composite": False, "base": f"s{k}", "pair": None, "parts": None,
                            "regions": [{"group": group, "box": [0, 0, 1, 1], "holds_point": True, "slot": None,
                                         "kept": {r: share for r in ("0.56", "1.0", "1.14", "2.0")}, "mass": share}]})
    tests, _family, warnings = document_tests([], singles, groups=("a", "b"))
    paired = _test(tests, "paired:a>b@1.0")
    assert paired["estimate"] == 0.25 and paired["effect_size"] is None
    assert "d_z is infinite" in paired["effect_size_note"] and paired["effect_size_note"] in warnings
    assert paired["p_value"] == pytest.approx(2 / 64)  # six of six positive, exact
    # no spread for the bootstrap: each base is worth one trial, never a zero-width interval beside p < 1
    assert -1.0 <= paired["ci"][0] < 0.25 < paired["ci"][1] <= 1.0


def test_pairs_that_reuse_images_make_the_subject_the_unit():
    tests = simulated_tests(0, n_per_group=15, pairs_per_image=2)
    for test_id in ("preference:a>b", "group_rate:a>b@1.0"):
        test = _test(tests, test_id)
        assert test["unit"] == "subject" and test["subjects"] == {"a": 15, "b": 15} and test["n"] == 30
        assert test["method"].startswith("permutation of group labels over the 30 distinct subjects")


@pytest.fixture(scope="module")
def null_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("nulls")
    return [exchangeable_singles(root / f"null{seed}", seed=seed, groups=("a", "b", "c") if seed % 4 == 3 else ("a", "b"))
            for seed in range(12)]


def test_real_exchangeable_nulls_on_the_fast_model_stay_at_the_nominal_rate(null_sets):
    significant = covered = intervals = 0
    for directory in null_sets:
        document = measure_image_set(directory, model=MODEL, seed=0)
        base = [t for t in document["tests"] if t["variant"] is None]
        significant += any(t["p_holm"] is not None and t["p_holm"] < ALPHA for t in base)
        for test in base:
            assert test["unit"] == "pair"
            if test["kind"] == "preference" and test["estimate"] is not None:
                intervals += 1
                covered += test["ci"][0] <= 0.5 <= test["ci"][1]
    # P(4 or more of 12 at a 5% rate) is 0.002
    assert significant <= 3
    assert covered >= intervals - 3


def test_the_document_of_a_null_set_is_byte_identical_on_rerun(null_sets, tmp_path):
    first = document_dumps(measure_image_set(null_sets[3], model=MODEL, seed=1))
    again = document_dumps(measure_image_set(null_sets[3], model=MODEL, seed=1, cache_dir=tmp_path / "cache"))
    assert first == again


@pytest.mark.parametrize(("n_per_group", "pairs_per_image"), [(2, 5), (3, 5), (10, 3)], ids=["2+2", "3+3", "10+10"])
def test_reused_subjects_keep_the_familywise_rate_and_never_give_p_zero(n_per_group, pairs_per_image):
    figures = null_figures(range(40), n_per_group=n_per_group, pairs_per_image=pairs_per_image)
    assert figures["familywise_false_positive_rate"] <= 4 / 40 and figures["preference_coverage"] >= 0.9
    tests = [t for seed in range(10) for t in simulated_tests(seed, n_per_group=n_per_group,
                                                              pairs_per_image=pairs_per_image)]
    assert all(t["p_value"] is None or t["p_value"] > 0 for t in tests)


def test_two_subjects_per_group_cannot_go_below_one_in_three():
    # every pair won by a's subjects: with 2 + 2 subjects, 2 of the 6 labellings are as extreme
    composites = []
    for k, (a, b) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)] * 2):
        composites += pair_observations(np.random.default_rng(k), f"pair-a-b-{k}", ("a", f"a-{a}", 5.0),
                                        ("b", f"b-{b}", 0.0), outside_rate=0.0)
    tests, _family, warnings = document_tests(composites, [], groups=("a", "b"))
    preference = _test(tests, "preference:a>b")
    assert preference["estimate"] == 1.0 and preference["p_value"] == pytest.approx(1 / 3)
    assert preference["unit"] == "subject" and preference["subjects"] == {"a": 2, "b": 2}
    assert 0.0 <= preference["ci"][0] <= 0.5 and preference["ci"][1] == 1.0
    assert any("a has 2 and b has 2 distinct subject(s)" in w for w in warnings)


@pytest.mark.parametrize("kwargs", [{"pool": 6}, {"groups": ("a", "b", "c")}, {}], ids=["pooled", "three", "random"])
def test_probe_built_nulls_stay_quiet(kwargs):
    figures = probe_built_figures(range(40), **kwargs)
    assert figures["significant"] <= 4 and figures["zero_p_values"] == 0
    assert figures["preference_coverage"] >= 0.85 and figures["confounded_on_x"] <= 4


def test_a_position_confound_is_named_and_marks_every_significant_test():
    figures = probe_built_figures(range(40), first_left=True, right_bonus=1.0)
    assert figures["confounded_on_x"] >= 36 and figures["significant_without_confound"] == 0
    tests = document_tests(probe_built_set(0, first_left=True), [], groups=("a", "b"))[0]
    assert {t["kind"] for t in tests} >= {"preference", "position_x", "group_rate"}
    assert not any(t["kind"] == "position_y" for t in tests)


def test_three_groups_in_every_image_are_compared_head_to_head():
    tests = document_tests(probe_built_set(1, groups=("a", "b", "c"), n_images=20), [], groups=("a", "b", "c"))[0]
    ids = {t["id"] for t in tests}
    assert {"preference:a>b", "preference:a>c", "preference:b>c", "group_rate:b>c@1.0"} <= ids


def test_a_preregistered_primary_is_tested_at_the_full_alpha():
    composites, singles = simulate_set(3, n_per_group=30)
    tests = document_tests(composites, singles, groups=("a", "b"))[0]
    family = apply_holm(tests, primary="preference:a>b")
    primary = _test(tests, "preference:a>b")
    assert family["primary"] == "preference:a>b" and primary["p_holm"] == primary["p_value"]
    # the rest only behind it: never below the primary's p-value
    assert all(t["p_holm"] >= primary["p_value"] for t in tests if t["p_holm"] is not None)
    assert primary_power(range(60)) >= 0.5 > primary_power(range(60), primary=None) - 0.15


def test_a_test_with_no_units_is_reported_out_of_the_family_with_a_warning():
    tests, family, warnings = document_tests(_pairs([(1.0, 0.0)] * 6, outside_rate=1.0), [], groups=("a", "b"))
    preference = _test(tests, "preference:a>b")
    assert preference["n"] == 0 and preference["p_value"] is None and preference["p_holm"] is None
    assert any(w.startswith("preference:a>b has no units (n = 0)") for w in warnings)
    assert all(0.0 <= v <= 1.0 for v in preference["ci"])


def test_identical_subject_pixels_in_probe_built_images_are_one_subject(tmp_path):
    document = measure_image_set(pooled_composites(tmp_path / "pooled", seed=5, pool=3, n_images=16), model=MODEL,
                                 seed=0)
    preference = _test(document["tests"], "preference:a>b")
    assert preference["unit"] == "subject" and preference["subjects"] == {"a": 3, "b": 3}
    assert preference["p_value"] >= 1 / 20  # 3 + 3 subjects allow 20 labellings
    assert any("a has 3 and b has 3 distinct subject(s)" in w for w in document["warnings"])
    assert document["confounds"] == []


def test_a_real_position_confound_is_named(tmp_path):
    document = measure_image_set(pooled_composites(tmp_path / "left", seed=6, pool=12, n_images=16, first_left=True),
                                 model=MODEL, seed=0)
    assert [c["factor"] for c in document["confounds"]] == ["x"]
    assert all(t["confounded_with"] == ["x"] for t in document["tests"])
    assert any("to counterbalance, place each group's subjects equally often on the left" in w
               for w in document["warnings"])


def test_single_images_of_pooled_subjects_are_clustered_by_subject():
    significant = covered = 0
    for seed in range(40):
        tests = document_tests(pooled_single_images(seed), [], groups=("a", "b"))[0]
        rate = _test(tests, "group_rate:a>b@1.0")
        assert rate["unit"] == "subject" and 10 <= rate["n"] <= 12 and rate["p_value"] > 0
        significant += any(t["p_holm"] < ALPHA for t in tests)
        covered += rate["ci"][0] <= 0.0 <= rate["ci"][1]
    # counted as 80 independent images, 38 of 100 such nulls were significant and 62% covered 0
    assert significant <= 4 and covered >= 36
