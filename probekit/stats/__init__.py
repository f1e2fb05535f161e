"""Statistics of the measurement: pure functions on counts and samples (no Django).

Proportions (Wilson, exact binomial, two-proportion z, Newcombe, Cohen's h), clustered
proportions (ratio estimates by cluster, Wilson at the effective size), paired and two-sample
statistics (percentile bootstrap, exact sign-flip and Wilcoxon signed-rank tests, Cohen's
d_z), the permutation of group labels over reused subjects, the Holm correction across one submission's tests, and the sample sizes behind the
low-power warning.
"""
from ._clustered import (
    MISMATCHED_CLUSTERS,
    bounded_interval,
    cluster_proportion_interval,
    cluster_rate_difference,
    cluster_ratio,
    effective_wilson_interval,
)
from ._multiple import holm
from ._paired import (
    bootstrap_difference_interval,
    bootstrap_mean_interval,
    cohen_dz,
    sign_flip_test,
    wilcoxon_signed_rank,
)
from ._power import (
    BAD_ALPHA,
    BAD_EFFECT,
    BAD_POWER,
    required_n_paired,
    required_n_proportion,
    required_n_two_proportions,
    underpowered_warning,
)
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
from ._subjects import MISMATCHED_COMPARISONS, TOO_FEW_SUBJECTS, subject_components, subject_permutation_test
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
    "MISMATCHED_CLUSTERS",
    "MISMATCHED_COMPARISONS",
    "NOT_A_COUNT",
    "NOT_FINITE",
    "NOT_ONE_DIMENSIONAL",
    "SUCCESSES_EXCEED_TRIALS",
    "TOO_FEW_SUBJECTS",
    "binomial_test",
    "bounded_interval",
    "bootstrap_difference_interval",
    "bootstrap_mean_interval",
    "cluster_proportion_interval",
    "cluster_rate_difference",
    "cluster_ratio",
    "cohen_dz",
    "cohen_h",
    "effective_wilson_interval",
    "holm",
    "newcombe_interval",
    "rate_difference",
    "rate_ratio",
    "required_n_paired",
    "required_n_proportion",
    "required_n_two_proportions",
    "sign_flip_test",
    "subject_components",
    "subject_permutation_test",
    "two_proportion_test",
    "underpowered_warning",
    "wilcoxon_signed_rank",
    "wilson_interval",
]
