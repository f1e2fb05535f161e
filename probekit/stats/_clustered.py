"""Statistics of clustered counts: ratio estimates whose unit is a cluster (a pair, a base, an image).

The layouts of one pair, or the images of one `base` tuple, are not independent trials: they
are summed per cluster, and the variance comes from the spread between clusters (Taylor
linearization of the ratio estimator), never from the count of layouts.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ._validation import check_confidence, check_sample

MISMATCHED_CLUSTERS = "numerators, denominators and cluster labels must have one entry per cluster"


def _pair(numerators, denominators) -> tuple[np.ndarray, np.ndarray]:
    num, den = check_sample(numerators), check_sample(denominators)
    if num.shape != den.shape:
        raise ValueError(MISMATCHED_CLUSTERS)
    return num, den


def _two_way_variance(scores: np.ndarray, labels_a, labels_b) -> float:
    """Cameron-Gelbach-Miller variance of a sum of `scores`, clustered by two crossed labels."""

    def one_way(labels) -> float:
        totals: dict = {}
        for label, score in zip(labels, scores):
            totals[label] = totals.get(label, 0.0) + float(score)
        g = len(totals)
        correction = g / (g - 1) if g > 1 else 1.0
        return correction * sum(v * v for v in totals.values())

    pairs = list(zip(labels_a, labels_b))
    return max(one_way(labels_a) + one_way(labels_b) - one_way(pairs), 0.0)


def cluster_ratio(numerators, denominators, *, labels_a=None, labels_b=None) -> tuple[float | None, float]:
    """Ratio estimate :math:`\\hat r = \\sum x_i / \\sum m_i` over clusters and its linearized variance.

    .. math::

        \\widehat{\\operatorname{Var}}(\\hat r) = \\frac{g}{g - 1}
        \\frac{\\sum_i (x_i - \\hat r\\, m_i)^2}{\\left(\\sum_i m_i\\right)^2}

    with ``g`` clusters. When the clusters share members (a pair reuses an image of each group,
    ``labels_a`` / ``labels_b`` naming them), the residuals are clustered two ways instead
    (Cameron, Gelbach and Miller 2011): :math:`V_A + V_B - V_{A \\cap B}`.

    Parameters
    ----------
    numerators, denominators : array-like of shape (g,)
        Per cluster: successes and trials (e.g. layouts the first group won, layouts decided).
    labels_a, labels_b : sequence of hashable, optional
        Per cluster, the image of each group it uses; both or neither.

    Returns
    -------
    (estimate, variance) : tuple
        ``(None, 0.0)`` when no cluster has a trial.

    References
    ----------
    Cochran, W. G. (1977). Sampling Techniques, 3rd ed., section 6.4 (ratio estimators).
    Cameron, A. C., Gelbach, J. B. and Miller, D. L. (2011). Robust inference with multiway
    clustering. Journal of Business & Economic Statistics, 29(2), 238-249.
    """
    num, den = _pair(numerators, denominators)
    total = float(den.sum())
    if total <= 0.0:
        return None, 0.0
    estimate = float(num.sum()) / total
    residuals = (num - estimate * den) / total
    g = residuals.size
    if labels_a is not None and labels_b is not None:
        if len(labels_a) != g or len(labels_b) != g:
            raise ValueError(MISMATCHED_CLUSTERS)
        return estimate, _two_way_variance(residuals, labels_a, labels_b)
    correction = g / (g - 1) if g > 1 else 1.0
    return estimate, float(correction * np.sum(residuals**2))


def effective_wilson_interval(estimate: float, n_effective: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion whose information is that of ``n_effective`` trials.

    .. math::

        \\frac{\\hat p + z^2 / 2n \\pm z \\sqrt{\\hat p (1 - \\hat p) / n + z^2 / 4n^2}}{1 + z^2 / n},
        \\quad n = n_{\\text{eff}} = \\frac{\\hat p (1 - \\hat p)}{\\widehat{\\operatorname{Var}}(\\hat p)}

    For whole ``n_effective`` it equals :func:`wilson_interval`; for clustered data the
    effective size comes from :func:`cluster_ratio` (Korn and Graubard 1998).

    Parameters
    ----------
    estimate : float
        The proportion, in [0, 1].
    n_effective : float
        Effective number of independent trials, > 0.
    confidence : float, default=0.95
        Confidence level, strictly between 0 and 1.

    Returns
    -------
    (low, high) : tuple of float

    References
    ----------
    Korn, E. L. and Graubard, B. I. (1998). Confidence intervals for proportions with small
    expected number of positive counts estimated from survey data. Survey Methodology, 24(2),
    193-201. Wilson, E. B. (1927). JASA, 22(158), 209-212.
    """
    confidence = check_confidence(confidence)
    p, n = float(estimate), float(n_effective)
    z = float(stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def cluster_proportion_interval(numerators, denominators, *, labels_a=None, labels_b=None,
                                confidence: float = 0.95) -> tuple[float | None, tuple[float, float]]:
    """A clustered proportion and its Wilson interval at the effective sample size.

    The effective size :math:`\\hat p(1 - \\hat p) / \\widehat{\\operatorname{Var}}(\\hat p)` is
    capped at the number of clusters: a cluster is never worth more than one independent trial,
    whatever the agreement of its layouts (which also covers :math:`\\hat p \\in \\{0, 1\\}`,
    where the variance is 0).

    Returns
    -------
    (estimate, (low, high)) : ``(None, (0.0, 1.0))`` when no cluster has a trial.
    """
    estimate, variance = cluster_ratio(numerators, denominators, labels_a=labels_a, labels_b=labels_b)
    g = int(np.count_nonzero(check_sample(denominators) > 0))
    if estimate is None or g == 0:
        return None, (0.0, 1.0)
    spread = estimate * (1.0 - estimate)
    n_effective = float(g) if variance <= 0.0 or spread <= 0.0 else min(float(g), spread / variance)
    return estimate, effective_wilson_interval(estimate, n_effective, confidence)


def cluster_rate_difference(x1, n1, x2, n2, *, confidence: float = 0.95) -> tuple[float, tuple[float, float], float]:
    """Difference of two clustered rates, :math:`\\sum x_1 / \\sum n_1 - \\sum x_2 / \\sum n_2`.

    Each cluster may hold cases of one group or of both (two regions of one composite are
    correlated; the linearization keeps that covariance). With per-cluster residuals

    .. math::

        e_i = \\frac{x_{1i} - \\hat r_1 n_{1i}}{\\sum n_1} - \\frac{x_{2i} - \\hat r_2 n_{2i}}{\\sum n_2},
        \\quad \\widehat{\\operatorname{Var}} = \\frac{g}{g - 1} \\sum e_i^2

    the interval is :math:`\\hat\\Delta \\pm t_{g - 1} \\sqrt{\\widehat{\\operatorname{Var}}}` and the
    p-value the matching two-sided t-test.

    Returns
    -------
    (difference, (low, high), p_value) : tuple
        When the variance is 0 (every cluster on its group's rate) the p-value is Fisher's exact
        test with each cluster counted once and the interval :func:`bounded_interval` at ``g``.

    References
    ----------
    Cochran, W. G. (1977). Sampling Techniques, 3rd ed., sections 6.4 and 6.12.
    """
    confidence = check_confidence(confidence)
    a1, b1 = _pair(x1, n1)
    a2, b2 = _pair(x2, n2)
    if a1.shape != a2.shape:
        raise ValueError(MISMATCHED_CLUSTERS)
    t1, t2 = float(b1.sum()), float(b2.sum())
    r1, r2 = float(a1.sum()) / t1, float(a2.sum()) / t2
    residuals = (a1 - r1 * b1) / t1 - (a2 - r2 * b2) / t2
    g = residuals.size
    difference = r1 - r2
    variance = float(g / (g - 1) * np.sum(residuals**2)) if g > 1 else 0.0
    if variance <= 0.0:
        # every cluster sits exactly on its group's rate: Fisher's exact test on clusters as trials,
        # and a Wilson interval with each cluster worth one trial (never of zero width)
        g1, g2 = int(np.count_nonzero(b1 > 0)), int(np.count_nonzero(b2 > 0))
        table = [[round(g1 * r1), g1 - round(g1 * r1)], [round(g2 * r2), g2 - round(g2 * r2)]]
        p_value = 1.0 if difference == 0.0 else float(stats.fisher_exact(table).pvalue)
        return difference, bounded_interval(difference, 0.0, low=-1.0, high=1.0, n_max=g, confidence=confidence), \
            p_value
    se = math.sqrt(variance)
    quantile = float(stats.t.ppf(1.0 - (1.0 - confidence) / 2.0, g - 1))
    p_value = float(2.0 * stats.t.sf(abs(difference) / se, g - 1))
    return difference, (max(-1.0, difference - quantile * se), min(1.0, difference + quantile * se)), p_value


def bounded_interval(estimate: float, variance: float, *, low: float, high: float, n_max: float,
                     confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval for a mean bounded in [low, high], at an effective size capped at ``n_max``.

    The estimate is rescaled to :math:`q = (\\hat\\theta - low) / (high - low) \\in [0, 1]`, its
    effective size is :math:`q(1 - q) / \\widehat{\\operatorname{Var}}(q)` capped at ``n_max`` (the
    number of independent units, e.g. the fewer distinct subjects of the two groups; also when
    the variance is 0), and the Wilson interval at that size (Korn and Graubard 1998) is mapped
    back. It never leaves [low, high] and never has zero width.
    """
    span = high - low
    q = min(1.0, max(0.0, (estimate - low) / span))
    scaled = variance / (span * span)
    spread = q * (1.0 - q)
    n_effective = float(n_max) if scaled <= 0.0 or spread <= 0.0 else min(float(n_max), spread / scaled)
    lo, hi = effective_wilson_interval(q, max(n_effective, 1.0), confidence)
    return low + span * lo, low + span * hi
