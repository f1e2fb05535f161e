"""The confirmatory run of a replication, as probekit sees it from inside the sandbox.

The platform sets `PROBEKIT_CONFIRMATORY=1` and a fresh `PROBE_SEED` when it runs a probe the
second time. That run has no target model: no /models, the built-in weights hidden, and the
crop helpers below refuse — a probe that picks its images by asking the model could pick them
again on any seed, so it must build its set without it.
"""
from __future__ import annotations

import os

SEED_ENV = "PROBE_SEED"
CONFIRMATORY_ENV = "PROBEKIT_CONFIRMATORY"
# The start of the error a probe gets; the platform names it as the replication's reason.
NO_TARGET_MODEL = "no target model in the confirmatory run"


class NoTargetModel(RuntimeError):
    """Raised by the crop helpers inside a confirmatory run."""


def refuse_target(what: str) -> None:
    if os.environ.get(CONFIRMATORY_ENV):
        raise NoTargetModel(f"{NO_TARGET_MODEL}: {what} is unavailable while the platform draws your set again "
                            f"with a fresh {SEED_ENV}; build the set without querying the crop")
