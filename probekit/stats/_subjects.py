"""Inference when subjects are reused: the unit is the subject, not the pair or the image.

When the same subject (an image of one group, or identical region pixels inside several
probe-built images) takes part in several comparisons, those comparisons are dependent and
the information about a group is bounded by how many distinct subjects it has. The test here
permutes the group labels over the subjects with the comparisons (who met whom) held fixed.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from ._validation import check_sample

MAX_EXACT_LABELLINGS = 20_000
MONTE_CARLO_RESAMPLES = 9_999
MISMATCHED_COMPARISONS = "values, weights and both subject lists must have one entry per comparison"
TOO_FEW_SUBJECTS = "each group needs at least one subject"
_CHUNK = 2_000
_TOLERANCE = 1e-12  # float sums of the same terms in another order must still count as equal


def _labellings(n: int, k: int, *, seed: int, resamples: int):
    """(blocks of labellings, exact): every way to give k of n subjects the first group's label, or a seeded
    random sample of them, in blocks of at most _CHUNK rows (a large set never holds them all at once)."""
    total = math.comb(n, k)
    if total <= MAX_EXACT_LABELLINGS:
        rows = np.zeros((total, n), dtype=bool)
        for index, chosen in enumerate(combinations(range(n), k)):
            rows[index, list(chosen)] = True
        return (rows[start:start + _CHUNK] for start in range(0, total, _CHUNK)), True

    def sampled():
        rng = np.random.default_rng(seed)
        for start in range(0, resamples, _CHUNK):
            size = min(_CHUNK, resamples - start)
            chosen = np.argsort(rng.random((size, n)), axis=1)[:, :k]
            rows = np.zeros((size, n), dtype=bool)
            np.put_along_axis(rows, chosen, True, axis=1)
            yield rows

    return sampled(), False


def subject_permutation_test(values, weights, subjects_a, subjects_b, *, seed: int = 0,
                             resamples: int = MONTE_CARLO_RESAMPLES) -> tuple[float, str]:
    """Two-sided permutation test of group labels over subjects, the comparisons held fixed.

    Comparison ``e`` sets subject :math:`a_e` of the first group against :math:`b_e` of the
    second, with a centred score :math:`v_e` (positive favours the first group; swapping the two
    labels negates it) and a weight :math:`w_e` (layouts decided). The statistic is

    .. math::

        T(L) = \\frac{\\sum_e s_e(L)\\, v_e}{\\sum_e |s_e(L)|\\, w_e},\\quad
        s_e(L) = L(a_e) - L(b_e) \\in \\{-1, 0, 1\\}

    for a labelling ``L`` giving 1 to the first group's subjects. Under the null, group labels
    carry no information about the subjects, so every labelling of the pooled subjects with the
    same group sizes is as likely as the observed one; comparisons whose two subjects get one
    label leave the statistic. The p-value is the share of labellings with
    :math:`|T(L)| \\ge |T_{obs}|` (a labelling that leaves no comparison counts as extreme):
    exact over all :math:`\\binom{n_A + n_B}{n_A}` labellings when there are at most
    20,000, else a seeded Monte-Carlo sample with the +1 correction. It is never below
    :math:`1 / \\binom{n_A + n_B}{n_A}` and never 0, whatever the variance.

    Parameters
    ----------
    values, weights : array-like of shape (m,)
        Per comparison: the centred score and its weight (> 0).
    subjects_a, subjects_b : sequence of hashable, length m
        Per comparison: the subject of each group.
    seed : int
        Seeds the Monte-Carlo sample (the exact test does not use it).

    Returns
    -------
    (p_value, how) : tuple
        ``how`` says "exact over N labellings" or "Monte-Carlo, B labellings".

    References
    ----------
    Good, P. (2005). Permutation, Parametric, and Bootstrap Tests of Hypotheses, 3rd ed.,
    ch. 3. Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero.
    Statistical Applications in Genetics and Molecular Biology, 9(1), 39.
    """
    v, w = check_sample(values), check_sample(weights)
    if v.shape != w.shape or len(subjects_a) != v.size or len(subjects_b) != v.size:
        raise ValueError(MISMATCHED_COMPARISONS)
    first, second = sorted(set(subjects_a), key=str), sorted(set(subjects_b), key=str)
    if not first or not second:
        raise ValueError(TOO_FEW_SUBJECTS)
    index = {("a", s): i for i, s in enumerate(first)}
    index.update({("b", s): len(first) + i for i, s in enumerate(second)})
    ia = np.array([index["a", s] for s in subjects_a])
    ib = np.array([index["b", s] for s in subjects_b])
    n, k = len(first) + len(second), len(first)
    observed = abs(float(v.sum()) / float(w.sum()))
    blocks, exact = _labellings(n, k, seed=seed, resamples=resamples)
    extreme = count = 0
    for block in blocks:
        count += len(block)
        signs = block[:, ia].astype(np.int8) - block[:, ib].astype(np.int8)
        kept = np.abs(signs) @ w
        with np.errstate(invalid="ignore", divide="ignore"):
            statistic = np.abs(signs @ v) / kept
        extreme += int(np.count_nonzero((kept <= 0) | (statistic >= observed - _TOLERANCE)))
    if exact:
        return extreme / count, f"exact over {count:,} labellings of {n} subjects"
    return (extreme + 1) / (count + 1), f"Monte-Carlo, {count:,} seeded labellings of {n} subjects"


def subject_components(subjects_a, subjects_b) -> np.ndarray:
    """Per comparison, the index of its connected component: comparisons linked by a shared subject.

    Components share no subject, so under the null their scores are independent and each is as
    likely to favour one group as the other: a sign-flip test over components is exact.
    """
    if len(subjects_a) != len(subjects_b):
        raise ValueError(MISMATCHED_COMPARISONS)
    parent: dict = {}

    def root(node):
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in zip(subjects_a, subjects_b):
        parent[root(("a", a))] = root(("b", b))
    roots: dict = {}
    return np.array([roots.setdefault(root(("a", a)), len(roots)) for a in subjects_a], dtype=int)
