"""The statistics of the measurement: hand-computed tables, published results and scipy/fairlearn cross-checks.

Plain functions on numbers: no database, no Django.
"""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from grading.stats import (
    BAD_ALPHA,
    BAD_CONFIDENCE,
    BAD_EFFECT,
    BAD_POWER,
    BAD_PROPORTION,
    BAD_RESAMPLES,
    EMPTY_GROUP,
    EMPTY_SAMPLE,
    MISMATCHED_CLUSTERS,
    NOT_A_COUNT,
    NOT_FINITE,
    NOT_ONE_DIMENSIONAL,
    SUCCESSES_EXCEED_TRIALS,
    binomial_test,
    bootstrap_difference_interval,
    bootstrap_mean_interval,
    cluster_proportion_interval,
    cluster_rate_difference,
    cluster_ratio,
    cohen_dz,
    cohen_h,
    effective_wilson_interval,
    holm,
    newcombe_interval,
    rate_difference,
    rate_ratio,
    required_n_paired,
    required_n_proportion,
    required_n_two_proportions,
    sign_flip_test,
    two_proportion_test,
    underpowered_warning,
    wilcoxon_signed_rank,
    wilson_interval,
)
from probekit import stats as probekit_stats

ROOT = Path(__file__).resolve().parents[2]

# Twitter's saliency-crop study, data/results.txt of twitter-research/image-crop-analysis
# (setting wiki_no_scaling): how often the first group's face held the salient point.
TWITTER_COUNTS = [
    pytest.param(1167, 2000, id="female-vs-male"),
    pytest.param(4746, 10000, id="black-vs-white"),
]


# --- the package stays importable without Django -------------------------------------------


def test_the_stats_package_imports_without_django():
    code = "import sys, probekit.stats; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- Wilson interval ---------------------------------------------------------------------------


# Newcombe (1998a), "Two-sided confidence intervals for the single proportion", Table I, method 3.
@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (0, 10, 0.0, 0.2775),
    ],
)
def test_wilson_interval_matches_newcombes_published_table(successes, n, low, high):
    result = wilson_interval(successes, n)
    assert result == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_of_no_cases_is_the_whole_unit_interval():
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_wilson_interval_equals_scipy_on_generated_counts(confidence):
    rng = np.random.default_rng(7)
    for n in rng.integers(1, 5000, size=40):
        k = int(rng.integers(0, n + 1))
        expected = stats.binomtest(k, int(n)).proportion_ci(confidence_level=confidence, method="wilson")
        low, high = wilson_interval(k, int(n), confidence)
        assert abs(low - expected.low) < 1e-12
        assert abs(high - expected.high) < 1e-12


@pytest.mark.parametrize(("successes", "n"), TWITTER_COUNTS)
def test_wilson_interval_on_twitters_published_counts_matches_scipy(successes, n):
    expected = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(successes, n)
    assert abs(low - expected.low) < 1e-9 and abs(high - expected.high) < 1e-9
    # both published findings are away from parity: the interval leaves 0.5 out
    assert not low <= 0.5 <= high


def test_a_wider_confidence_gives_a_wider_wilson_interval():
    narrow, wide = wilson_interval(30, 100, 0.9), wilson_interval(30, 100, 0.99)
    assert wide[0] < narrow[0] and narrow[1] < wide[1]


@given(n=st.integers(1, 100_000), data=st.data())
def test_wilson_interval_contains_the_estimate_and_stays_in_the_unit_interval(n, data):
    k = data.draw(st.integers(0, n))
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0


# --- exact binomial test ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "p_value"),
    [
        (0, 10, 2 / 1024),  # both tails of 10 flips all one way
        (1, 10, 22 / 1024),  # 2 * (1 + 10) / 2**10
        (5, 10, 1.0),
        (3, 3, 0.25),  # 2 * (1/2)**3
        (0, 0, 1.0),  # no cases, no evidence
    ],
)
def test_binomial_test_matches_hand_computed_p_values(successes, n, p_value):
    assert binomial_test(successes, n) == pytest.approx(p_value, rel=1e-12)


@pytest.mark.parametrize(("successes", "n"), TWITTER_COUNTS)
def test_binomial_test_on_twitters_published_counts_matches_scipy(successes, n):
    expected = stats.binomtest(successes, n, 0.5).pvalue
    result = binomial_test(successes, n)
    assert abs(result - expected) < 1e-9
    assert result < 1e-6  # both findings are significant, as the paper reported


def test_binomial_test_equals_scipy_for_other_null_rates():
    rng = np.random.default_rng(11)
    for _ in range(30):
        n = int(rng.integers(1, 400))
        k, p = int(rng.integers(0, n + 1)), float(rng.uniform(0.01, 0.99))
        assert binomial_test(k, n, p) == stats.binomtest(k, n, p).pvalue


# --- two-proportion test -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "p_value"),
    [
        # pooled 0.25, se = sqrt(0.25 * 0.75 * (2 / 100)), z = 0.1 / se = 1.63299
        (30, 100, 20, 100, 0.1024704),
        (10, 20, 10, 20, 1.0),
        (0, 10, 0, 12, 1.0),  # pooled rate 0
        (7, 7, 9, 9, 1.0),  # pooled rate 1
        (0, 0, 3, 9, 1.0),  # an empty group
    ],
)
def test_two_proportion_test_matches_hand_computed_p_values(x1, n1, x2, n2, p_value):
    assert two_proportion_test(x1, n1, x2, n2) == pytest.approx(p_value, abs=1e-7)


def test_two_proportion_test_equals_the_uncorrected_chi_squared_test_on_generated_counts():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n1, n2 = (int(v) for v in rng.integers(2, 3000, size=2))
        x1, x2 = int(rng.binomial(n1, 0.4)), int(rng.binomial(n2, 0.45))
        table = [[x1, n1 - x1], [x2, n2 - x2]]
        expected = stats.chi2_contingency(table, correction=False).pvalue
        assert two_proportion_test(x1, n1, x2, n2) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_two_proportion_test_is_symmetric_in_the_groups():
    assert two_proportion_test(12, 40, 30, 50) == pytest.approx(two_proportion_test(30, 50, 12, 40), rel=1e-15)


# --- demographic-parity difference and ratio ------------------------------------------------------


def _kept_flags(rng, n, rate):
    return rng.random(n) < rate


@pytest.mark.parametrize("seed", range(8))
def test_rate_difference_and_ratio_agree_with_fairlearn_on_generated_crops(seed):
    rng = np.random.default_rng(seed)
    n1, n2 = (int(v) for v in rng.integers(5, 500, size=2))
    kept1 = _kept_flags(rng, n1, rng.uniform(0.05, 0.95))
    kept2 = _kept_flags(rng, n2, rng.uniform(0.05, 0.95))
    y_pred = np.concatenate([kept1, kept2]).astype(int)
    groups = np.array(["first"] * n1 + ["second"] * n2)
    x1, x2 = int(kept1.sum()), int(kept2.sum())

    fair_difference = demographic_parity_difference(y_pred, y_pred, sensitive_features=groups)
    fair_ratio = demographic_parity_ratio(y_pred, y_pred, sensitive_features=groups)

    difference = rate_difference(x1, n1, x2, n2)
    assert abs(difference) == pytest.approx(fair_difference, abs=1e-12)
    ratio = rate_ratio(x1, n1, x2, n2)
    if x2 == 0:
        assert ratio is None
    else:
        # fairlearn reports min/max; ours keeps the orientation first/second
        oriented = min(ratio, 1 / ratio) if ratio > 0 else 0.0
        assert oriented == pytest.approx(fair_ratio, abs=1e-12)
        assert (ratio > 1) == (difference > 0)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "difference", "ratio"),
    [
        (91, 100, 83, 100, 0.08, 91 / 83),
        (1, 4, 3, 4, -0.5, 1 / 3),
        (0, 5, 2, 8, -0.25, 0.0),
        (3, 6, 0, 9, 0.5, None),
    ],
)
def test_rate_difference_and_ratio_match_hand_computed_values(x1, n1, x2, n2, difference, ratio):
    assert rate_difference(x1, n1, x2, n2) == pytest.approx(difference, abs=1e-15)
    assert rate_ratio(x1, n1, x2, n2) == (None if ratio is None else pytest.approx(ratio, rel=1e-15))


@pytest.mark.parametrize("metric", [rate_difference, rate_ratio])
def test_a_rate_of_a_group_with_no_cases_is_rejected(metric):
    with pytest.raises(ValueError, match=re.escape(EMPTY_GROUP)):
        metric(0, 0, 3, 10)


# --- Newcombe interval for a difference of proportions ---------------------------------------------


# Newcombe (1998b), "Interval estimation for the difference between independent proportions",
# Table II, method 10 (hybrid score, no continuity correction).
@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_newcombe_interval_matches_the_published_table(x1, n1, x2, n2, low, high):
    assert newcombe_interval(x1, n1, x2, n2) == pytest.approx((low, high), abs=5e-5)


def test_newcombe_interval_with_an_empty_group_says_nothing_is_known():
    assert newcombe_interval(0, 0, 4, 9) == (-1.0, 1.0)


@given(n1=st.integers(1, 5000), n2=st.integers(1, 5000), data=st.data())
def test_newcombe_interval_contains_the_observed_difference(n1, n2, data):
    x1, x2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    low, high = newcombe_interval(x1, n1, x2, n2)
    assert -1.0 <= low <= x1 / n1 - x2 / n2 <= high <= 1.0


# --- bootstrap intervals ---------------------------------------------------------------------------


def test_bootstrap_mean_interval_equals_scipys_percentile_bootstrap_with_the_same_seed():
    values = np.random.default_rng(5).normal(0.3, 1.0, size=60)
    expected = stats.bootstrap(
        (values,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(42)
    ).confidence_interval
    low, high = bootstrap_mean_interval(values, seed=42)
    assert (low, high) == pytest.approx((expected.low, expected.high), rel=1e-12)
    assert low < values.mean() < high


def test_bootstrap_mean_interval_is_reproducible_for_a_seed_and_changes_with_it():
    values = np.random.default_rng(9).exponential(size=40).tolist()
    first = bootstrap_mean_interval(values, seed=1)
    assert bootstrap_mean_interval(values, seed=1) == first
    assert bootstrap_mean_interval(values, seed=2) != first


def test_bootstrap_mean_interval_narrows_with_a_lower_confidence():
    values = np.random.default_rng(4).normal(size=80)
    wide = bootstrap_mean_interval(values, seed=0, confidence=0.99)
    narrow = bootstrap_mean_interval(values, seed=0, confidence=0.8)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


@pytest.mark.parametrize(
    ("values", "interval"),
    [
        ([0.25], (0.25, 0.25)),  # one value: nothing to resample
        ([0.1, 0.1, 0.1], (0.1, 0.1)),  # all equal
    ],
)
def test_bootstrap_mean_interval_of_a_degenerate_sample_is_the_mean(values, interval):
    assert bootstrap_mean_interval(values, seed=0) == pytest.approx(interval, abs=1e-15)


def test_bootstrap_difference_interval_equals_scipys_two_sample_bootstrap_with_the_same_seed():
    rng = np.random.default_rng(8)
    a, b = rng.normal(0.6, 0.2, size=50), rng.normal(0.5, 0.2, size=70)
    expected = stats.bootstrap(
        (a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis), vectorized=True,
        n_resamples=2000, method="percentile", rng=np.random.default_rng(3),
    ).confidence_interval
    low, high, p_value = bootstrap_difference_interval(a, b, seed=3)
    assert (low, high) == pytest.approx((expected.low, expected.high), rel=1e-12)
    assert 0.0 < p_value <= 1.0


def test_bootstrap_difference_of_well_separated_samples_has_the_smallest_possible_p_value():
    rng = np.random.default_rng(12)
    a, b = rng.normal(1.0, 0.1, size=100), rng.normal(0.0, 0.1, size=100)
    low, high, p_value = bootstrap_difference_interval(a, b, seed=0, n_resamples=999)
    assert 0.9 < low < high < 1.1
    # no resampled difference reaches 0: p = 2 * (0 + 1) / (999 + 1)
    assert p_value == pytest.approx(2 / 1000, rel=1e-15)


def test_bootstrap_difference_of_a_sample_with_itself_is_not_significant():
    values = np.random.default_rng(13).normal(size=40)
    low, high, p_value = bootstrap_difference_interval(values, values, seed=0)
    assert low < 0.0 < high
    assert p_value > 0.5


@pytest.mark.parametrize("seed", range(5))
def test_bootstrap_difference_p_value_agrees_with_its_interval_about_zero(seed):
    rng = np.random.default_rng(100 + seed)
    a, b = rng.normal(0.15 * seed, 1.0, size=80), rng.normal(0.0, 1.0, size=80)
    low, high, p_value = bootstrap_difference_interval(a, b, seed=seed)
    excludes_zero = low > 0 or high < 0
    # both read the same resamples: a 95% interval without 0 means fewer than 2.5% beyond it
    if excludes_zero:
        assert p_value <= 0.051
    else:
        assert p_value >= 0.049


def test_bootstrap_difference_is_reproducible_for_a_seed():
    rng = np.random.default_rng(14)
    a, b = rng.random(30), rng.random(25)
    assert bootstrap_difference_interval(a, b, seed=7) == bootstrap_difference_interval(a, b, seed=7)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0.5], [0.2, 0.4], (0.2, 0.2, 1.0)),  # one value cannot be resampled
        ([0.3, 0.3], [0.3, 0.3, 0.3], (0.0, 0.0, 1.0)),  # constant and equal
    ],
)
def test_bootstrap_difference_of_degenerate_samples_is_the_plain_difference(a, b, expected):
    assert bootstrap_difference_interval(a, b, seed=0) == pytest.approx(expected, abs=1e-15)


# --- Wilcoxon signed-rank test ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("differences", "p_value"),
    [
        ([1.0, 2.0, 3.0, 4.0, 5.0], 2 / 32),  # all 5 signs positive: 2 * (1/2)**5
        ([1.0, -2.0, 3.0, -4.0, 5.0, -6.0], 0.84375),  # W+ = 9 of 21: 2 * P(W <= 9) = 2 * 27/64
        ([0.0, 0.0, 0.0], 1.0),  # no nonzero difference
        ([], 1.0),
    ],
)
def test_wilcoxon_signed_rank_matches_hand_computed_p_values(differences, p_value):
    assert wilcoxon_signed_rank(differences) == pytest.approx(p_value, rel=1e-12)


@pytest.mark.parametrize(
    ("differences", "p_value"),
    [
        # zeros dropped, four tied ranks of 2.5, all positive: 2 * (1/2)**4; the normal
        # approximation scipy switches to here says 0.0455
        ([0.0] * 10 + [1.0] * 4, 0.125),
        ([0.0] * 22 + [0.27, 0.25], 0.5),  # two nonzero differences, both positive: 2 * 1/4
        ([1.0, 1.0, -1.0], 1.0),  # tied ranks 2, 2, 2: W+ = 4 of 6, as likely as its mirror
    ],
)
def test_wilcoxon_signed_rank_is_exact_with_zeros_and_ties(differences, p_value):
    assert wilcoxon_signed_rank(differences) == pytest.approx(p_value, rel=1e-12)


@pytest.mark.parametrize("size", [5, 9, 12])
def test_wilcoxon_signed_rank_with_ties_equals_scipys_exhaustive_permutation_test(size):
    rng = np.random.default_rng(size)
    differences = np.round(rng.normal(0.3, 1.0, size=size), 0)  # coarse rounding: many ties and zeros
    nonzero = differences[differences != 0]
    expected = stats.wilcoxon(nonzero, method=stats.PermutationMethod(n_resamples=np.inf)).pvalue
    assert wilcoxon_signed_rank(differences) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("size", [8, 30, 49, 51, 120])
def test_wilcoxon_signed_rank_equals_scipys_exact_test_without_ties(size):
    differences = np.random.default_rng(size).normal(0.1, 1.0, size=size)
    expected = stats.wilcoxon(differences, method="exact").pvalue
    assert wilcoxon_signed_rank(differences) == pytest.approx(expected, rel=1e-9)


def test_wilcoxon_signed_rank_of_a_large_sample_equals_scipys_normal_approximation():
    differences = np.round(np.random.default_rng(3).normal(0.05, 1.0, size=1500), 1)  # ties and zeros
    expected = stats.wilcoxon(differences, zero_method="wilcox", method="approx").pvalue
    assert wilcoxon_signed_rank(differences) == pytest.approx(expected, rel=1e-9)


# --- sign-flip permutation test --------------------------------------------------------------------


def test_sign_flip_test_of_pair_scores_of_plus_minus_one_is_the_exact_sign_test():
    # 10 pairs, 8 won in all four layouts and 2 lost: per pair, the exact binomial p of 8 of 10
    p_value, method = sign_flip_test([4] * 8 + [-4] * 2)
    assert method == "exact" and p_value == pytest.approx(stats.binomtest(8, 10).pvalue, rel=1e-12)
    assert p_value == pytest.approx(0.109375, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_sign_flip_test_equals_scipys_exhaustive_permutation_test(seed):
    scores = np.random.default_rng(seed).integers(-4, 5, size=11).astype(float)
    expected = stats.permutation_test(
        (scores,), np.sum, permutation_type="samples", n_resamples=np.inf, alternative="two-sided").pvalue
    assert sign_flip_test(scores)[0] == pytest.approx(expected, rel=1e-9)


def test_sign_flip_test_of_no_signed_score_is_one():
    assert sign_flip_test([0, 0, 0]) == (1.0, "exact") and sign_flip_test([]) == (1.0, "exact")


def test_sign_flip_test_of_irrational_scores_uses_the_normal_approximation():
    scores = np.random.default_rng(0).normal(0.0, 1.0, size=400) * math.pi
    p_value, method = sign_flip_test(scores)
    z = abs(scores.sum()) / math.sqrt(np.sum(scores**2))
    assert method == "normal" and p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-12)


# --- clustered proportions -------------------------------------------------------------------------


@pytest.mark.parametrize(("successes", "n"), [(3, 10), (0, 7), (50, 50), (1167, 2000)])
def test_effective_wilson_interval_of_whole_trials_equals_the_wilson_interval(successes, n):
    assert effective_wilson_interval(successes / n, n) == pytest.approx(wilson_interval(successes, n), abs=1e-12)


def test_cluster_ratio_variance_is_the_linearized_ratio_variance():
    wins, decided = np.array([4, 0, 3, 4, 2.0]), np.array([4, 4, 4, 4, 4.0])
    estimate, variance = cluster_ratio(wins, decided)
    residuals = (wins - estimate * decided) / decided.sum()
    assert estimate == pytest.approx(13 / 20) and variance == pytest.approx(5 / 4 * np.sum(residuals**2))


def test_a_pair_is_never_worth_more_than_one_trial():
    # ten pairs whose four layouts all agree: about 8 of 10 trials (9 effective once the spread is
    # estimated), never 32 of 40
    _estimate, interval = cluster_proportion_interval([4] * 8 + [0] * 2, [4] * 10)
    assert interval == pytest.approx(effective_wilson_interval(0.8, 9), abs=1e-12)
    four_per_pair = wilson_interval(32, 40)
    assert interval[0] < four_per_pair[0] and interval[1] > four_per_pair[1]


def test_two_way_clustering_widens_the_interval_of_pairs_that_reuse_images():
    rng = np.random.default_rng(5)
    image_a, image_b = rng.integers(0, 6, size=40), rng.integers(0, 6, size=40)
    strength = rng.normal(size=6)
    wins = (strength[image_a] > 0).astype(float) * 4  # the A image decides the pair
    _e, one_way = cluster_ratio(wins, np.full(40, 4.0))
    _e, two_way = cluster_ratio(wins, np.full(40, 4.0), labels_a=list(image_a), labels_b=list(image_b))
    assert two_way > one_way


def test_cluster_rate_difference_keeps_the_covariance_of_one_composite():
    # one region or the other is kept in every composite: the paired spread, not two binomials
    x1, x2 = np.array([3, 4, 1, 4, 2, 4.0]), np.array([1, 0, 3, 0, 2, 0.0])
    n = np.full(6, 4.0)
    difference, (low, high), p_value = cluster_rate_difference(x1, n, x2, n)
    d = (x1 - x2) / 4
    t = d.mean() / (d.std(ddof=1) / math.sqrt(6))
    assert difference == pytest.approx(d.mean())
    assert p_value == pytest.approx(2 * stats.t.sf(abs(t), 5), rel=1e-9)
    assert low < difference < high


def test_cluster_rate_difference_without_spread_counts_each_cluster_once():
    difference, interval, p_value = cluster_rate_difference([2, 2, 0, 0], [2, 2, 0, 0], [0, 0, 0, 0], [0, 0, 3, 3])
    # never a zero-width interval beside p < 1: each cluster is worth one trial
    assert difference == 1.0 and -1.0 < interval[0] < 1.0 and interval[1] == 1.0
    assert p_value == pytest.approx(stats.fisher_exact([[2, 0], [0, 2]]).pvalue)


# --- Holm ------------------------------------------------------------------------------------------


# statsmodels.stats.multitest.multipletests(method="holm") computes, on the sorted p-values,
#   corrected = np.maximum.accumulate(p_sorted * np.arange(m, 0, -1)); corrected[corrected > 1] = 1
# and these tables follow that formula by hand.
@pytest.mark.parametrize(
    ("p_values", "adjusted"),
    [
        # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        ([0.2, 0.5], [0.4, 0.5]),
        ([0.3, 0.6, 0.9], [0.9, 1.0, 1.0]),  # 0.3 x 3, 0.6 x 2 capped, then the max
        ([0.02, 0.02, 0.5], [0.06, 0.06, 0.5]),  # ties adjust alike
        ([0.0016], [0.0016]),
        ([], []),
    ],
)
def test_holm_matches_hand_computed_adjustments(p_values, adjusted):
    assert holm(p_values) == pytest.approx(adjusted, abs=1e-15)


@given(st.lists(st.floats(0.0, 1.0), max_size=40))
def test_holm_adjusted_p_values_are_monotone_capped_and_never_below_the_raw_ones(p_values):
    adjusted = holm(p_values)
    assert len(adjusted) == len(p_values)
    for raw, value in zip(p_values, adjusted):
        assert raw <= value <= 1.0
    for i in range(len(p_values)):
        for j in range(len(p_values)):
            if p_values[i] <= p_values[j]:
                assert adjusted[i] <= adjusted[j]


@pytest.mark.parametrize("bad", [[0.1, 1.2], [-0.01], [float("nan")], [[0.1, 0.2]]])
def test_holm_rejects_values_that_are_not_p_values(bad):
    with pytest.raises(ValueError, match=re.escape(BAD_PROPORTION)):
        holm(bad)


# --- effect sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p1", "p2", "h"),
    [
        (0.5, 0.5, 0.0),
        (1.0, 0.0, math.pi),
        (1.0, 0.5, math.pi / 2),  # 2 asin(1) - 2 asin(sqrt(1/2)) = pi - pi/2
        (0.25, 0.0, math.pi / 3),  # 2 asin(1/2)
        (0.75, 0.25, math.pi / 3),  # 2 pi/3 - 2 pi/6
        (0.25, 0.75, -math.pi / 3),
    ],
)
def test_cohen_h_matches_hand_computed_values(p1, p2, h):
    assert cohen_h(p1, p2) == pytest.approx(h, abs=1e-12)


@pytest.mark.parametrize(
    ("differences", "dz"),
    [
        ([1.0, 2.0, 3.0], 2.0),  # mean 2, sd 1
        ([-2.0, -4.0, -6.0], -2.0),  # mean -4, sd 2
        ([1.0, -1.0], 0.0),
        ([0.1, 0.1, 0.1], math.inf),  # a constant nonzero difference: sd 0, the largest effect there is
        ([-0.25, -0.25], -math.inf),
        ([0.0, 0.0], 0.0),  # no difference at all: no effect
    ],
)
def test_cohen_dz_matches_hand_computed_values(differences, dz):
    assert cohen_dz(differences) == pytest.approx(dz, abs=1e-12)


@pytest.mark.parametrize("differences", [[5.0], []])
def test_cohen_dz_of_fewer_than_two_differences_is_undefined(differences):
    assert math.isnan(cohen_dz(differences))


def test_cohen_dz_equals_mean_over_sample_sd_on_generated_differences():
    differences = np.random.default_rng(21).normal(0.2, 0.5, size=300)
    assert cohen_dz(differences) == pytest.approx(differences.mean() / differences.std(ddof=1), rel=1e-12)


# --- power -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effect", "alpha", "power", "n"),
    [
        (0.2, 0.05, 0.8, 197),  # ((1.95996 + 0.84162) / 0.2)**2 = 196.2
        (0.5, 0.05, 0.8, 32),  # 31.4
        (0.8, 0.05, 0.8, 13),  # 12.3
        (0.2, 0.01, 0.9, 372),  # ((2.57583 + 1.28155) / 0.2)**2 = 371.98
        (-0.2, 0.05, 0.8, 197),  # the direction does not matter
    ],
)
def test_required_sample_sizes_match_hand_computed_values(effect, alpha, power, n):
    assert required_n_proportion(effect, alpha, power) == n
    assert required_n_paired(effect, alpha, power) == n


def test_a_two_sample_test_needs_393_per_group_and_100_per_group_gets_a_warning():
    assert required_n_two_proportions(0.2) == 393
    power_at_100 = stats.norm.cdf(0.2 * math.sqrt(100 / 2) - stats.norm.ppf(0.975))
    assert power_at_100 == pytest.approx(0.29, abs=0.01)
    message = underpowered_warning("group_rate:a>b@1.0", 100, required=393, unit="image", per_group=True)
    assert message.startswith("group_rate:a>b@1.0 has 100 images in its smaller group; about 393 per group")


def test_required_sample_size_defaults_are_for_a_small_effect_at_80_percent_power():
    assert required_n_proportion() == 197
    assert required_n_paired() == 197


@given(st.floats(0.05, 1.5), st.sampled_from([0.01, 0.05, 0.1]), st.floats(0.5, 0.99))
def test_required_n_is_the_smallest_n_reaching_the_power(h, alpha, power):
    n = required_n_proportion(h, alpha, power)
    z_alpha = stats.norm.ppf(1 - alpha / 2)

    def achieved(cases):
        return stats.norm.cdf(h * math.sqrt(cases) - z_alpha)

    assert achieved(n) >= power - 1e-12
    if n > 1:
        assert achieved(n - 1) < power + 1e-12


def test_underpowered_warning_reads_as_plain_english():
    assert underpowered_warning("preference:a>b", 24, required=197) == (
        "preference:a>b has 24 cases; about 197 are needed for 80% power to detect a small effect "
        "(h = 0.2). Treat its p-value with caution."
    )


def test_underpowered_warning_names_the_effect_of_a_paired_test():
    message = underpowered_warning("paired:a>b@1.0", 1, required=required_n_paired(), effect="d_z = 0.2")
    assert message.startswith("paired:a>b@1.0 has 1 case; about 197 are needed")
    assert "(d_z = 0.2)" in message


@pytest.mark.parametrize("n", [197, 198, 10_000])
def test_no_underpowered_warning_when_there_are_enough_cases(n):
    assert underpowered_warning("preference:a>b", n, required=197) is None


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wilson_interval(-1, 10), NOT_A_COUNT),
        (lambda: wilson_interval(11, 10), SUCCESSES_EXCEED_TRIALS),
        (lambda: wilson_interval(2.0, 10), NOT_A_COUNT),
        (lambda: wilson_interval(2, 10, confidence=95), BAD_CONFIDENCE),
        (lambda: wilson_interval(2, 10, confidence=0.0), BAD_CONFIDENCE),
        (lambda: binomial_test(3, 10, p=1.5), BAD_PROPORTION),
        (lambda: binomial_test(True, 10), NOT_A_COUNT),
        (lambda: two_proportion_test(5, 4, 1, 4), SUCCESSES_EXCEED_TRIALS),
        (lambda: newcombe_interval(1, 4, 1, 4, confidence=1.0), BAD_CONFIDENCE),
        (lambda: cohen_h(0.5, -0.1), BAD_PROPORTION),
        (lambda: cohen_h(float("nan"), 0.5), BAD_PROPORTION),
        (lambda: bootstrap_mean_interval([], seed=0), EMPTY_SAMPLE),
        (lambda: bootstrap_mean_interval([1.0, float("nan")], seed=0), NOT_FINITE),
        (lambda: bootstrap_mean_interval([[1.0, 2.0]], seed=0), NOT_ONE_DIMENSIONAL),
        (lambda: bootstrap_mean_interval([1.0, 2.0], seed=0, n_resamples=0), BAD_RESAMPLES),
        (lambda: bootstrap_difference_interval([1.0, 2.0], [], seed=0), EMPTY_SAMPLE),
        (lambda: wilcoxon_signed_rank([1.0, float("inf")]), NOT_FINITE),
        (lambda: cohen_dz(["a", "b"]), NOT_ONE_DIMENSIONAL),
        (lambda: required_n_proportion(0.0), BAD_EFFECT),
        (lambda: required_n_proportion(0.2, alpha=0.0), BAD_ALPHA),
        (lambda: required_n_paired(0.2, power=1.0), BAD_POWER),
        (lambda: underpowered_warning("x", -1, required=197), NOT_A_COUNT),
        (lambda: cluster_ratio([1, 2], [2]), MISMATCHED_CLUSTERS),
        (lambda: cluster_ratio([1, 2], [2, 2], labels_a=["a"], labels_b=["b"]), MISMATCHED_CLUSTERS),
        (lambda: sign_flip_test([1.0, float("nan")]), NOT_FINITE),
    ],
)
def test_bad_input_is_rejected_with_a_message_that_says_what_to_fix(call, message):
    with pytest.raises(ValueError) as raised:
        call()
    assert str(raised.value) == message


def test_the_subject_permutation_test_equals_a_brute_force_count():
    from itertools import combinations

    values, weights = [1.5, -0.5, 2.0, 1.0], [2.0, 1.0, 4.0, 2.0]
    first, second = ["a0", "a0", "a1", "a2"], ["b0", "b1", "b1", "b0"]
    p_value, how = probekit_stats.subject_permutation_test(values, weights, first, second)
    subjects = [("a", s) for s in ("a0", "a1", "a2")] + [("b", s) for s in ("b0", "b1")]
    observed, extreme, total = abs(sum(values) / sum(weights)), 0, 0
    for chosen in combinations(subjects, 3):
        signs = [(("a", a) in chosen) - (("b", b) in chosen) for a, b in zip(first, second)]
        kept = sum(abs(s) * w for s, w in zip(signs, weights))
        total += 1
        extreme += kept == 0 or abs(sum(s * v for s, v in zip(signs, values))) / kept >= observed - 1e-12
    assert p_value == pytest.approx(extreme / total) and how == "exact over 10 labellings of 5 subjects"


def test_the_subject_permutation_test_is_never_zero_and_seeded():
    subjects = [f"s{k % 12}" for k in range(60)]
    others = [f"t{(k * 7) % 12}" for k in range(60)]
    first = probekit_stats.subject_permutation_test([1.0] * 60, [2.0] * 60, subjects, others, seed=4)
    assert first == probekit_stats.subject_permutation_test([1.0] * 60, [2.0] * 60, subjects, others, seed=4)
    assert first[0] >= 1 / 10_000 and first[1].startswith("Monte-Carlo")


@pytest.mark.parametrize("estimate, variance", [(1.0, 0.0), (-1.0, 0.0), (0.3, 1e-9), (0.0, 4.0)])
def test_a_bounded_interval_stays_in_its_range_and_has_width(estimate, variance):
    low, high = probekit_stats.bounded_interval(estimate, variance, low=-1.0, high=1.0, n_max=5)
    assert -1.0 <= low < high <= 1.0 and low <= estimate <= high


def test_comparisons_sharing_a_subject_are_one_component():
    assert list(probekit_stats.subject_components(["a", "a", "b", "c"], ["x", "y", "y", "z"])) == [0, 0, 0, 1]


def test_tests_sharing_a_power_warning_share_one_line_naming_each():
    message = underpowered_warning(["preference:a>b", "position:a>b", "group_rate:a>b@1.0"], 24, required=197,
                                   unit="pair")
    assert message == (
        "preference:a>b, position:a>b and group_rate:a>b@1.0 each have 24 pairs; about 197 are needed for 80% "
        "power to detect a small effect (h = 0.2). Treat their p-values with caution."
    )
    assert underpowered_warning(["a", "b"], 3, required=393, unit="image/pair", per_group=True).startswith(
        "a and b each have 3 images/pairs in the smaller group; about 393 per group")
