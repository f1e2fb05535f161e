"""Input checks shared by the statistics modules; each message lives in a module constant."""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

NOT_A_COUNT = "counts must be whole numbers of at least 0 (got a negative or non-integer count)"
SUCCESSES_EXCEED_TRIALS = "successes must lie between 0 and n: a group cannot have more hits than cases"
BAD_CONFIDENCE = "confidence must be strictly between 0 and 1, e.g. 0.95 for a 95% interval"
BAD_PROPORTION = "a proportion or p-value must be a finite number in [0, 1]"
NOT_ONE_DIMENSIONAL = "values must be a one-dimensional sequence of numbers"
NOT_FINITE = "values must be finite numbers: drop NaN and infinite entries before calling"
EMPTY_SAMPLE = "the sample is empty: at least one value is needed"
BAD_RESAMPLES = "n_resamples must be a whole number of at least 1"


def check_count(value) -> int:
    """Return ``value`` as an int, raising ``NOT_A_COUNT`` unless it is a whole number >= 0."""
    # bool is an Integral but a True/False "count" is always a caller's slip
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(NOT_A_COUNT)
    return int(value)


def check_successes(successes, n) -> tuple[int, int]:
    """Return ``(successes, n)`` as ints after checking ``0 <= successes <= n``."""
    k, n = check_count(successes), check_count(n)
    if k > n:
        raise ValueError(SUCCESSES_EXCEED_TRIALS)
    return k, n


def check_confidence(confidence) -> float:
    """Return ``confidence`` as a float in the open interval (0, 1)."""
    if not isinstance(confidence, Real) or not 0.0 < float(confidence) < 1.0:
        raise ValueError(BAD_CONFIDENCE)
    return float(confidence)


def check_proportion(p) -> float:
    """Return ``p`` as a float in the closed interval [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, Real) or not math.isfinite(p) or not 0.0 <= p <= 1.0:
        raise ValueError(BAD_PROPORTION)
    return float(p)


def check_sample(values) -> np.ndarray:
    """Return ``values`` as a finite 1-D float array (possibly empty)."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(NOT_ONE_DIMENSIONAL) from error
    if array.ndim != 1:
        raise ValueError(NOT_ONE_DIMENSIONAL)
    if not np.all(np.isfinite(array)):
        raise ValueError(NOT_FINITE)
    return array


def check_resamples(n_resamples) -> int:
    """Return ``n_resamples`` as an int >= 1."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, Integral) or n_resamples < 1:
        raise ValueError(BAD_RESAMPLES)
    return int(n_resamples)
