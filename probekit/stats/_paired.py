"""Statistics of continuous samples: bootstrap intervals, the signed-rank test and Cohen's d_z."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ._validation import EMPTY_SAMPLE, check_confidence, check_resamples, check_sample


def _mean(sample, axis=-1):
    return np.mean(sample, axis=axis)


def _mean_difference(first, second, axis=-1):
    return np.mean(first, axis=axis) - np.mean(second, axis=axis)


def _nonempty_sample(values) -> np.ndarray:
    array = check_sample(values)
    if array.size == 0:
        raise ValueError(EMPTY_SAMPLE)
    return array


def _all_equal(array: np.ndarray) -> bool:
    # exact equality, not std == 0: the std of [0.1, 0.1, 0.1] is ~1e-17 in floating point
    return bool(np.all(array == array[0]))


def bootstrap_mean_interval(
    values, *, seed: int, confidence: float = 0.95, n_resamples: int = 2000
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Draw ``B`` resamples :math:`x^{*b}` of size ``n`` with replacement; the interval is

    .. math::

        \\left(Q_{\\alpha/2}(\\bar x^{*}),\\; Q_{1-\\alpha/2}(\\bar x^{*})\\right), \\quad \\alpha = 1 - c

    computed by ``scipy.stats.bootstrap(..., method="percentile", vectorized=True)`` with
    ``rng = numpy.random.default_rng(seed)``, so a seed gives the same interval every time.

    Parameters
    ----------
    values : array-like of shape (n,)
        Finite numbers, ``n >= 1``.
    seed : int
        Seed of the resampling generator.
    confidence : float, default=0.95
        Confidence level, strictly between 0 and 1.
    n_resamples : int, default=2000
        Number of bootstrap resamples ``B``.

    Returns
    -------
    (low, high) : tuple of float
        ``(mean, mean)`` when ``n < 2`` or all values are equal (nothing to resample).

    References
    ----------
    Efron, B. and Tibshirani, R. J. (1993). An Introduction to the Bootstrap, chapter 13.
    """
    sample = _nonempty_sample(values)
    confidence = check_confidence(confidence)
    n_resamples = check_resamples(n_resamples)
    mean = float(np.mean(sample))
    if sample.size < 2 or _all_equal(sample):
        return (mean, mean)
    result = stats.bootstrap(
        (sample,), _mean, n_resamples=n_resamples, vectorized=True, confidence_level=confidence,
        method="percentile", rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def bootstrap_difference_interval(
    a, b, *, seed: int, confidence: float = 0.95, n_resamples: int = 2000
) -> tuple[float, float, float]:
    """Percentile bootstrap interval and p-value of mean(a) - mean(b) for two independent samples.

    Each of ``B`` rounds resamples ``a`` and ``b`` separately with replacement and records
    :math:`\\Delta^{*b} = \\bar a^{*b} - \\bar b^{*b}`. The interval is the percentile interval of
    :math:`\\Delta^*`; with :math:`\\hat\\Delta = \\bar a - \\bar b` the two-sided p-value is

    .. math::

        P = \\min\\left(1,\\; 2\\,\\frac{1 + \\#\\{b : \\Delta^{*b} \\text{ on the other side of 0 from }
        \\hat\\Delta \\text{ or at 0}\\}}{B + 1}\\right)

    Resampling is ``scipy.stats.bootstrap(..., paired=False, method="percentile")`` seeded by
    ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    a, b : array-like of shape (n_a,), (n_b,)
        Finite numbers, each at least one value (e.g. per-image values of a variant and of
        the base model).
    seed : int
        Seed of the resampling generator.
    confidence : float, default=0.95
        Confidence level, strictly between 0 and 1.
    n_resamples : int, default=2000
        Number of bootstrap resamples ``B``.

    Returns
    -------
    (low, high, p_value) : tuple of float
        ``(d, d, 1.0)`` with ``d = mean(a) - mean(b)`` when either sample has fewer than two
        values (nothing to resample), or when ``d == 0`` and both samples are constant.

    References
    ----------
    Efron, B. and Tibshirani, R. J. (1993). An Introduction to the Bootstrap, chapters 13
    and 16 (the bootstrap test of two means).
    """
    first, second = _nonempty_sample(a), _nonempty_sample(b)
    confidence = check_confidence(confidence)
    n_resamples = check_resamples(n_resamples)
    estimate = float(np.mean(first) - np.mean(second))
    if first.size < 2 or second.size < 2 or (estimate == 0.0 and _all_equal(first) and _all_equal(second)):
        return (estimate, estimate, 1.0)
    result = stats.bootstrap(
        (first, second), _mean_difference, n_resamples=n_resamples, vectorized=True, paired=False,
        confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
    )
    differences = result.bootstrap_distribution
    other_side = differences <= 0.0 if estimate > 0.0 else differences >= 0.0
    p_value = min(1.0, 2.0 * (1 + int(np.count_nonzero(other_side))) / (n_resamples + 1))
    return (float(result.confidence_interval.low), float(result.confidence_interval.high), float(p_value))


EXACT_SUM_LIMIT = 400_000  # lattice points of the exact null distribution; beyond it n is large and the CLT holds


def _sign_flip_distribution(weights: np.ndarray) -> np.ndarray:
    """P(sum of a random subset of the integer `weights` = t) for t = 0..sum, each subset equally likely."""
    total = int(weights.sum())
    probability = np.zeros(total + 1)
    probability[0] = 1.0
    reach = 0
    for weight in weights:
        weight = int(weight)
        shifted = np.zeros_like(probability)
        shifted[weight:reach + weight + 1] = probability[:reach + 1]
        probability = 0.5 * (probability + shifted)
        reach += weight
    return probability


def _exact_two_sided(weights: np.ndarray, positive_sum: float) -> float:
    """P(|S - E S| >= |s - E S|) for S = the sum of the weights given a + sign, all 2^n sign vectors equal."""
    probability = _sign_flip_distribution(weights)
    centre = weights.sum() / 2.0
    distance = abs(positive_sum - centre)
    t = np.arange(probability.size)
    # a relative tolerance so that rounding never drops the observed value itself from the tail
    extreme = np.abs(t - centre) >= distance - 1e-9 * max(1.0, distance)
    return float(min(1.0, probability[extreme].sum()))


def _integer_lattice(values: np.ndarray, max_scale: int = 5040) -> np.ndarray | None:
    """`values` times the smallest scale k <= max_scale that makes them all integers, else None."""
    for scale in (1, 2, 3, 4, 6, 8, 12, 24, 60, 120, 840, 2520, max_scale):
        scaled = values * scale
        rounded = np.round(scaled)
        if np.all(np.abs(scaled - rounded) <= 1e-9 * np.maximum(1.0, np.abs(scaled))):
            return rounded.astype(np.int64)
    return None


def sign_flip_test(values) -> tuple[float, str]:
    """Two-sided sign-flip (Fisher-Pitman) permutation test that cluster scores are symmetric about 0.

    Under the null each cluster's score is as likely to be ``+d_i`` as ``-d_i`` (the two groups of
    a pair, or the two slots of a layout, are exchangeable). The statistic is :math:`S = \\sum d_i`;

    .. math::

        P = \\Pr\\left(\\left|\\sum \\varepsilon_i d_i\\right| \\ge |S|\\right), \\quad
        \\varepsilon_i \\in \\{-1, +1\\} \\text{ independent and equally likely}

    computed exactly (all :math:`2^n` sign vectors, by dynamic programming over the sums) when the
    scores sit on a small integer lattice, e.g. wins minus losses of one pair's layouts, and by
    the normal approximation :math:`S / \\sqrt{\\sum d_i^2}` otherwise (large ``n`` only).
    With scores of ±1 it is the exact two-sided sign (binomial) test.

    Parameters
    ----------
    values : array-like of shape (n,)
        Finite cluster scores; zeros carry no sign and drop out.

    Returns
    -------
    (p_value, method) : tuple of float and str
        ``method`` is ``"exact"`` or ``"normal"``; ``(1.0, "exact")`` when every score is 0.

    References
    ----------
    Pitman, E. J. G. (1937). Significance tests which may be applied to samples from any
    populations. Journal of the Royal Statistical Society Supplement, 4(1), 119-130.
    """
    sample = check_sample(values)
    sample = sample[sample != 0.0]
    if sample.size == 0:
        return 1.0, "exact"
    lattice = _integer_lattice(np.abs(sample))
    if lattice is not None and int(lattice.sum()) <= EXACT_SUM_LIMIT:
        positive = float(lattice[sample > 0].sum())
        return _exact_two_sided(lattice, positive), "exact"
    z = abs(float(sample.sum())) / math.sqrt(float(np.sum(sample**2)))
    return float(min(1.0, 2.0 * stats.norm.sf(z))), "normal"


def wilcoxon_signed_rank(differences) -> float:
    """Two-sided Wilcoxon signed-rank test p-value for paired differences centred on 0.

    Zero differences are dropped (Wilcoxon's treatment, ``zero_method="wilcox"``), tied absolute
    differences get their mid-rank, and the statistic is

    .. math::

        W^+ = \\sum_{d_i > 0} \\operatorname{rank}(|d_i|)

    The p-value is exact, :math:`\\Pr(|W^+ - E W^+| \\ge |w^+ - E W^+|)` over all :math:`2^n`
    sign vectors of the ranks *as tied* (so zeros and ties never switch it to an approximation),
    while the rank sum is small enough to enumerate (``n`` up to about 900); beyond that, the
    normal approximation with the tie-corrected variance
    :math:`n(n+1)(2n+1)/24 - \\sum (t^3 - t)/48`, without continuity correction. Both agree with
    ``scipy.stats.wilcoxon`` where scipy's own method applies: its exact test (no zeros, no ties)
    and its normal approximation (large ``n``).

    Parameters
    ----------
    differences : array-like of shape (n,)
        Finite paired differences ``first - second``.

    Returns
    -------
    p_value : float
        Two-sided p-value; ``1.0`` when no difference is nonzero.

    References
    ----------
    Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics Bulletin,
    1(6), 80-83. Lehmann, E. L. (1975). Nonparametrics: Statistical Methods Based on Ranks,
    chapter 3 (ties and the conditional null distribution).
    """
    sample = check_sample(differences)
    sample = sample[sample != 0.0]
    n = sample.size
    if n == 0:
        return 1.0
    ranks = stats.rankdata(np.abs(sample))  # mid-ranks: multiples of 1/2
    doubled = np.round(2.0 * ranks).astype(np.int64)
    positive = float(doubled[sample > 0].sum())
    if int(doubled.sum()) <= EXACT_SUM_LIMIT:
        return _exact_two_sided(doubled, positive)
    _values, counts = np.unique(np.abs(sample), return_counts=True)
    variance = n * (n + 1) * (2 * n + 1) / 24.0 - float(np.sum(counts**3 - counts)) / 48.0
    z = (positive / 2.0 - n * (n + 1) / 4.0) / math.sqrt(variance)
    return float(min(1.0, 2.0 * stats.norm.sf(abs(z))))


def cohen_dz(differences) -> float:
    """Cohen's d_z, the standardized mean of paired differences.

    .. math::

        d_z = \\frac{\\bar d}{s_d}, \\quad s_d = \\sqrt{\\tfrac{1}{n - 1} \\sum (d_i - \\bar d)^2}

    Parameters
    ----------
    differences : array-like of shape (n,)
        Finite paired differences ``first - second``.

    Returns
    -------
    d_z : float
        ``0.0`` when every difference is 0 (no effect); ``+inf`` or ``-inf`` when every
        difference equals the same nonzero value (``s_d == 0``: the effect is as large as a
        standardized effect can be); ``nan`` when ``n < 2`` (no standard deviation). The
        metrics document writes the last two as null and says why in a warning.

    References
    ----------
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.,
    section 2.3.5.
    """
    sample = check_sample(differences)
    if sample.size >= 1 and np.all(sample == 0.0):
        return 0.0
    if sample.size < 2:
        return math.nan
    if _all_equal(sample):
        return math.copysign(math.inf, float(sample[0]))
    return float(np.mean(sample) / np.std(sample, ddof=1))
