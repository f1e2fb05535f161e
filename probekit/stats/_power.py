"""Sample sizes for 80% power and the plain-English warning for tests with too few cases."""
from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

from scipy import stats

from ._validation import check_count

BAD_EFFECT = "the effect size to detect must be a finite nonzero number, e.g. h = 0.2 for a small effect"
BAD_ALPHA = "alpha must be strictly between 0 and 1, e.g. 0.05"
BAD_POWER = "power must be strictly between 0 and 1, e.g. 0.8 for 80% power"


def _required_n(effect: float, alpha: float, power: float) -> int:
    if isinstance(effect, bool) or not isinstance(effect, Real) or not math.isfinite(effect) or effect == 0:
        raise ValueError(BAD_EFFECT)
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0.0 < alpha < 1.0:
        raise ValueError(BAD_ALPHA)
    if isinstance(power, bool) or not isinstance(power, Real) or not 0.0 < power < 1.0:
        raise ValueError(BAD_POWER)
    z_alpha = stats.norm.ppf(1.0 - alpha / 2.0)
    z_power = stats.norm.ppf(power)
    return max(1, math.ceil(((z_alpha + z_power) / abs(effect)) ** 2))


def required_n_proportion(h: float = 0.2, alpha: float = 0.05, power: float = 0.8) -> int:
    """Cases needed for a two-sided one-sample test of a proportion to detect Cohen's h.

    Normal approximation on the arcsine scale, where :math:`2 \\arcsin \\sqrt{\\hat p}` has
    variance :math:`1 / n`:

    .. math::

        n = \\left\\lceil \\left(\\frac{z_{1 - \\alpha/2} + z_{\\text{power}}}{h}\\right)^2 \\right\\rceil

    For ``h = 0.2, alpha = 0.05, power = 0.8`` that is 197.

    Parameters
    ----------
    h : float, default=0.2
        Effect size to detect (Cohen's "small"); its sign is ignored.
    alpha : float, default=0.05
        Two-sided significance level.
    power : float, default=0.8
        Probability of detecting the effect.

    Returns
    -------
    n : int
        The smallest number of cases reaching ``power`` under the approximation.

    References
    ----------
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.,
    section 6.4 (case 2: one sample against a fixed proportion).
    """
    return _required_n(h, alpha, power)


def required_n_two_proportions(h: float = 0.2, alpha: float = 0.05, power: float = 0.8) -> int:
    """Cases needed *per group* for a two-sided test of two independent proportions to detect h.

    On the arcsine scale the difference of two groups of ``n`` has variance :math:`2 / n`:

    .. math::

        n = \\left\\lceil 2 \\left(\\frac{z_{1 - \\alpha/2} + z_{\\text{power}}}{h}\\right)^2 \\right\\rceil

    For ``h = 0.2, alpha = 0.05, power = 0.8`` that is 393 per group (100 per group has about
    29% power).

    References
    ----------
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.,
    section 6.3 (case 0: two independent samples of equal size).
    """
    return _required_n(h / math.sqrt(2.0), alpha, power)


def required_n_paired(dz: float = 0.2, alpha: float = 0.05, power: float = 0.8) -> int:
    """Pairs needed for a two-sided test of paired differences to detect Cohen's d_z.

    Normal approximation to the paired t-test (slightly optimistic for small ``n``):

    .. math::

        n = \\left\\lceil \\left(\\frac{z_{1 - \\alpha/2} + z_{\\text{power}}}{d_z}\\right)^2 \\right\\rceil

    Parameters
    ----------
    dz : float, default=0.2
        Effect size to detect (Cohen's "small"); its sign is ignored.
    alpha : float, default=0.05
        Two-sided significance level.
    power : float, default=0.8
        Probability of detecting the effect.

    Returns
    -------
    n : int
        The smallest number of pairs reaching ``power`` under the approximation.

    References
    ----------
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.,
    section 2.3.5 (paired samples, d_z).
    """
    return _required_n(dz, alpha, power)


def _plural(unit: str) -> str:
    """"pair" → "pairs"; each name of a joined unit ("image/pair") in the plural."""
    return "/".join(part if part.endswith("s") else f"{part}s" for part in unit.split("/"))


def _named(test_ids: list[str]) -> str:
    return test_ids[0] if len(test_ids) == 1 else f"{', '.join(test_ids[:-1])} and {test_ids[-1]}"


def underpowered_warning(
    test_id: str | Sequence[str], n: int, *, required: int, power: float = 0.8, effect: str = "h = 0.2",
    unit: str = "case", per_group: bool = False,
) -> str | None:
    """Plain-English warning for a test (or tests) with fewer cases than a power analysis asks for.

    Parameters
    ----------
    test_id : str or sequence of str
        The test's id in the metrics document, e.g. ``"preference:a>b"``; several tests with the
        same count, unit and requirement share one warning naming each of them.
    n : int
        Cases the test actually has.
    required : int
        Cases needed, from :func:`required_n_proportion` or :func:`required_n_paired`.
    power : float, default=0.8
        The power ``required`` was computed for (only used in the wording).
    effect : str, default="h = 0.2"
        The effect ``required`` was computed for (only used in the wording), e.g.
        ``"d_z = 0.2"`` for paired tests.
    unit : str, default="case"
        What ``n`` counts, singular: the test's unit (``"pair"``, ``"subject"``, ``"base"``, ``"image"``).
    per_group : bool, default=False
        ``n`` is the smaller group's count and ``required`` is per group (two-sample tests).

    Returns
    -------
    warning : str or None
        ``None`` when ``n >= required``.

    References
    ----------
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.
    """
    n, required = check_count(n), check_count(required)
    if n >= required:
        return None
    test_ids = [test_id] if isinstance(test_id, str) else list(test_id)
    units = unit if n == 1 else _plural(unit)
    where, each = (" in its smaller group", " per group") if per_group else ("", "")
    if len(test_ids) == 1:
        has, its = "has", "its p-value"
    else:
        has, its, where = "each have", "their p-values", where.replace("its", "the")
    return (
        f"{_named(test_ids)} {has} {n} {units}{where}; about {required}{each} are needed for {power:.0%} power "
        f"to detect a small effect ({effect}). Treat {its} with caution."
    )
