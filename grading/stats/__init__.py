"""Statistics of the measurement: pure functions on counts and samples (no Django).

Proportions (Wilson, exact binomial, two-proportion z, Newcombe, Cohen's h), paired and
two-sample statistics (percentile bootstrap, Wilcoxon signed-rank, Cohen's d_z), the Holm
correction across one submission's tests, and the sample sizes behind the low-power warning.
"""
from ._multiple import holm
from ._paired import bootstrap_difference_interval, bootstrap_mean_interval, cohen_dz, wilcoxon_signed_rank
from ._power import BAD_ALPHA, BAD_EFFECT, BAD_POWER, required_n_paired, required_n_proportion, underpowered_warning
from ._proportions import (
    EMPTY_GROUP,
    binomial_test,
    cohen_h,
    newcombe_interval,
    rate_difference,
    rate_ratio,
    two_proportion_test,
    wilson_interval,
)
from ._validation import (
    BAD_CONFIDENCE,
    BAD_PROPORTION,
    BAD_RESAMPLES,
    EMPTY_SAMPLE,
    NOT_A_COUNT,
    NOT_FINITE,
    NOT_ONE_DIMENSIONAL,
    SUCCESSES_EXCEED_TRIALS,
)

__all__ = [
    "BAD_ALPHA",
    "BAD_CONFIDENCE",
    "BAD_EFFECT",
    "BAD_POWER",
    "BAD_PROPORTION",
    "BAD_RESAMPLES",
    "EMPTY_GROUP",
    "EMPTY_SAMPLE",
    "NOT_A_COUNT",
    "NOT_FINITE",
    "NOT_ONE_DIMENSIONAL",
    "SUCCESSES_EXCEED_TRIALS",
    "binomial_test",
    "bootstrap_difference_interval",
    "bootstrap_mean_interval",
    "cohen_dz",
    "cohen_h",
    "holm",
    "newcombe_interval",
    "rate_difference",
    "rate_ratio",
    "required_n_paired",
    "required_n_proportion",
    "two_proportion_test",
    "underpowered_warning",
    "wilcoxon_signed_rank",
    "wilson_interval",
]
