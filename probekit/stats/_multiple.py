"""Multiple-testing correction: every p-value of a submission enters one Holm family."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._validation import BAD_PROPORTION


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values, in the order given.

    Sort the ``m`` p-values ascending, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`; then

    .. math::

        \\tilde p_{(i)} = \\min\\left(1,\\; \\max_{j \\le i} (m - j + 1)\\, p_{(j)}\\right)

    Rejecting every hypothesis with :math:`\\tilde p \\le \\alpha` controls the family-wise
    error rate at :math:`\\alpha` under any dependence between the tests.

    Parameters
    ----------
    p_values : sequence of float
        Raw p-values, each in [0, 1]; may be empty.

    Returns
    -------
    adjusted : list of float
        Adjusted p-values, same length and order as the input, each ``>=`` its raw value,
        monotone in the raw values and at most 1.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure.
    Scandinavian Journal of Statistics, 6(2), 65-70.
    """
    try:
        raw = np.asarray(p_values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(BAD_PROPORTION) from error
    if raw.ndim != 1 or not np.all(np.isfinite(raw)) or np.any((raw < 0.0) | (raw > 1.0)):
        raise ValueError(BAD_PROPORTION)
    m = raw.size
    if m == 0:
        return []
    # stable sort so tied p-values keep their input order and get the same adjusted value
    order = np.argsort(raw, kind="stable")
    stepped = np.maximum.accumulate(raw[order] * np.arange(m, 0, -1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(value) for value in adjusted]
