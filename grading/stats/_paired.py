"""Statistics of continuous samples: bootstrap intervals, the signed-rank test and Cohen's d_z."""
from __future__ import annotations

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


def wilcoxon_signed_rank(differences) -> float:
    """Two-sided Wilcoxon signed-rank test p-value for paired differences centred on 0.

    Zero differences are dropped (``zero_method="wilcox"``); the statistic is the smaller of

    .. math::

        W^+ = \\sum_{d_i > 0} \\operatorname{rank}(|d_i|), \\quad
        W^- = \\sum_{d_i < 0} \\operatorname{rank}(|d_i|)

    with the exact null distribution for small samples and the normal approximation
    otherwise, as chosen by ``scipy.stats.wilcoxon``.

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
    1(6), 80-83.
    """
    sample = check_sample(differences)
    if np.count_nonzero(sample) < 1:
        return 1.0
    return float(stats.wilcoxon(sample, zero_method="wilcox", alternative="two-sided").pvalue)


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
        ``0.0`` when ``n < 2`` or all differences are equal (``s_d == 0``): the ratio is then
        undefined or infinite, and the metrics document must stay JSON-safe (no NaN or inf).

    References
    ----------
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.,
    section 2.3.5.
    """
    sample = check_sample(differences)
    if sample.size < 2 or _all_equal(sample):
        return 0.0
    return float(np.mean(sample) / np.std(sample, ddof=1))
