"""Statistics of proportions: intervals, tests and effect sizes for kept-in-crop and preference rates."""
from __future__ import annotations

import math

from scipy import stats

from ._validation import check_confidence, check_proportion, check_successes

EMPTY_GROUP = "a group has no cases (n == 0), so its rate is undefined: measure at least one image per group"


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score confidence interval for a binomial proportion.

    With :math:`\\hat p = k / n` and :math:`z = \\Phi^{-1}(1 - (1 - c) / 2)`:

    .. math::

        \\frac{\\hat p + z^2 / 2n \\pm z \\sqrt{\\hat p (1 - \\hat p) / n + z^2 / 4n^2}}{1 + z^2 / n}

    Computed by ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``.

    Parameters
    ----------
    successes : int
        Number of successes ``k``, ``0 <= k <= n``.
    n : int
        Number of trials.
    confidence : float, default=0.95
        Confidence level, strictly between 0 and 1.

    Returns
    -------
    (low, high) : tuple of float
        The interval; ``(0.0, 1.0)`` when ``n == 0`` (nothing is known).

    References
    ----------
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
    inference. Journal of the American Statistical Association, 22(158), 209-212.
    """
    k, n = check_successes(successes, n)
    confidence = check_confidence(confidence)
    if n == 0:
        return (0.0, 1.0)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def binomial_test(successes: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test p-value of ``k`` successes in ``n`` trials against rate ``p``.

    .. math::

        P = \\sum_{i : \\Pr(X = i) \\le \\Pr(X = k)} \\binom{n}{i} p^i (1 - p)^{n - i}

    (the "minimum likelihood" two-sided p-value), computed by ``scipy.stats.binomtest``.

    Parameters
    ----------
    successes : int
        Number of successes ``k``, ``0 <= k <= n``.
    n : int
        Number of trials.
    p : float, default=0.5
        Rate under the null hypothesis, in [0, 1].

    Returns
    -------
    p_value : float
        Two-sided p-value; ``1.0`` when ``n == 0``.

    References
    ----------
    Clopper, C. J. and Pearson, E. S. (1934). The use of confidence or fiducial limits
    illustrated in the case of the binomial. Biometrika, 26(4), 404-413.
    """
    k, n = check_successes(successes, n)
    p = check_proportion(p)
    if n == 0:
        return 1.0
    return float(stats.binomtest(k, n, p, alternative="two-sided").pvalue)


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided pooled z-test p-value for the equality of two independent proportions.

    .. math::

        \\bar p = \\frac{x_1 + x_2}{n_1 + n_2}, \\quad
        z = \\frac{x_1 / n_1 - x_2 / n_2}{\\sqrt{\\bar p (1 - \\bar p)(1 / n_1 + 1 / n_2)}}, \\quad
        P = 2\\,(1 - \\Phi(|z|))

    Equal to Pearson's chi-squared test on the 2x2 table without continuity correction.

    Parameters
    ----------
    x1, n1 : int
        Successes and trials of the first group.
    x2, n2 : int
        Successes and trials of the second group.

    Returns
    -------
    p_value : float
        Two-sided p-value; ``1.0`` when either ``n`` is 0 or the pooled rate is 0 or 1
        (no variation, so no evidence of a difference).

    References
    ----------
    Fleiss, J. L., Levin, B. and Paik, M. C. (2003). Statistical Methods for Rates and
    Proportions, 3rd ed., section 2.6.
    """
    x1, n1 = check_successes(x1, n1)
    x2, n2 = check_successes(x2, n2)
    if n1 == 0 or n2 == 0 or x1 + x2 in (0, n1 + n2):
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    standard_error = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = (x1 / n1 - x2 / n2) / standard_error
    return float(min(1.0, 2.0 * stats.norm.sf(abs(z))))


def _rates(x1, n1, x2, n2) -> tuple[float, float]:
    x1, n1 = check_successes(x1, n1)
    x2, n2 = check_successes(x2, n2)
    if n1 == 0 or n2 == 0:
        raise ValueError(EMPTY_GROUP)
    return x1 / n1, x2 / n2


def rate_difference(x1: int, n1: int, x2: int, n2: int) -> float:
    """Demographic-parity difference of two kept-in-crop rates, first minus second.

    .. math::

        \\Delta = x_1 / n_1 - x_2 / n_2

    Its absolute value is fairlearn's ``demographic_parity_difference`` for two groups
    (which reports max - min of the selection rates).

    Parameters
    ----------
    x1, n1 : int
        Kept count and cases of the first group (``n1 >= 1``).
    x2, n2 : int
        Kept count and cases of the second group (``n2 >= 1``).

    Returns
    -------
    difference : float
        In [-1, 1]; positive when the first group is kept more often.

    References
    ----------
    Agarwal, A. et al. (2018). A reductions approach to fair classification. ICML.
    (Demographic parity as implemented in fairlearn.)
    """
    p1, p2 = _rates(x1, n1, x2, n2)
    return float(p1 - p2)


def rate_ratio(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Demographic-parity ratio of two kept-in-crop rates, first over second.

    .. math::

        R = \\frac{x_1 / n_1}{x_2 / n_2}

    ``min(R, 1 / R)`` is fairlearn's ``demographic_parity_ratio`` for two groups
    (which reports min / max of the selection rates).

    Parameters
    ----------
    x1, n1 : int
        Kept count and cases of the first group (``n1 >= 1``).
    x2, n2 : int
        Kept count and cases of the second group (``n2 >= 1``).

    Returns
    -------
    ratio : float or None
        ``None`` when the second rate is 0 (the ratio is undefined).

    References
    ----------
    Agarwal, A. et al. (2018). A reductions approach to fair classification. ICML.
    """
    p1, p2 = _rates(x1, n1, x2, n2)
    if p2 == 0.0:
        return None
    return float(p1 / p2)


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for a difference of two independent proportions.

    With Wilson intervals :math:`(l_i, u_i)` for :math:`\\hat p_i = x_i / n_i` and
    :math:`\\hat\\Delta = \\hat p_1 - \\hat p_2`:

    .. math::

        L = \\hat\\Delta - \\sqrt{(\\hat p_1 - l_1)^2 + (u_2 - \\hat p_2)^2}, \\quad
        U = \\hat\\Delta + \\sqrt{(u_1 - \\hat p_1)^2 + (\\hat p_2 - l_2)^2}

    Parameters
    ----------
    x1, n1 : int
        Successes and trials of the first group.
    x2, n2 : int
        Successes and trials of the second group.
    confidence : float, default=0.95
        Confidence level, strictly between 0 and 1.

    Returns
    -------
    (low, high) : tuple of float
        Interval for ``p1 - p2`` within [-1, 1]; ``(-1.0, 1.0)`` when either ``n`` is 0.

    References
    ----------
    Newcombe, R. G. (1998). Interval estimation for the difference between independent
    proportions: comparison of eleven methods. Statistics in Medicine, 17(8), 873-890
    (method 10).
    """
    x1, n1 = check_successes(x1, n1)
    x2, n2 = check_successes(x2, n2)
    confidence = check_confidence(confidence)
    if n1 == 0 or n2 == 0:
        return (-1.0, 1.0)
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, confidence)
    l2, u2 = wilson_interval(x2, n2, confidence)
    delta = p1 - p2
    low = delta - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = delta + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (float(max(-1.0, low)), float(min(1.0, high)))


def cohen_h(p1: float, p2: float) -> float:
    """Cohen's h, the effect size of a difference between two proportions.

    .. math::

        h = 2 \\arcsin \\sqrt{p_1} - 2 \\arcsin \\sqrt{p_2}

    0.2, 0.5 and 0.8 are Cohen's "small", "medium" and "large". For a preference test
    against parity use ``cohen_h(estimate, 0.5)``.

    Parameters
    ----------
    p1, p2 : float
        Proportions in [0, 1].

    Returns
    -------
    h : float
        In [-pi, pi]; positive when ``p1 > p2``.

    References
    ----------
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.,
    chapter 6.
    """
    p1, p2 = check_proportion(p1), check_proportion(p2)
    return float(2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2)))
