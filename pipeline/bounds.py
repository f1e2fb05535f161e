"""What a measurement may cost, checked before any model runs and enforced while it runs.

- **The plan** (images or composites × models, `probekit.setrules.plan_error`) is capped at
  `MEASURE_MAX_PLAN_RUNS`: a set over it is rejected when the run's output is stored (the run
  `rejected`, the submission `failed`), and again when a measurement starts (a set stored before).
- **Memory**: a measuring process may grow its address space by at most `MEASURE_MEMORY_MB`
  while it measures (`memory_capped`, a soft RLIMIT_AS around the measurement); past it the
  allocation fails with MemoryError, which the measurement blames on the set
  (docs/failure-model.md). CPU is bounded by the plan cap, the per-image caps and the task's
  time limit.
"""
from __future__ import annotations

import contextlib
import resource

from django.conf import settings

from probekit.imageset import ImageSetRejected
from probekit.models import REGISTRY
from probekit.setrules import plan_error

MEMORY_EXCEEDED = ("the set needs more memory than a measuring process may use ({cap_mb:,} MiB more than the "
                   "worker holds); use fewer or smaller images")


def plan_models(options: dict) -> list[str]:
    """The models a measurement with the challenge's settings runs (as probekit.measurement plans them)."""
    model = options["model"]
    names = [model, *[v for v in options.get("variants", ()) if v != model]]
    if options.get("generalization"):
        names += [name for name in REGISTRY if name != model.split("@")[0]]
    return names


def check_plan(image_set, options: dict) -> None:
    """Raise ImageSetRejected when measuring `image_set` would run more models than the cap allows."""
    error = plan_error(image_set, models=len(plan_models(options)), cap=settings.MEASURE_MAX_PLAN_RUNS)
    if error is not None:
        raise ImageSetRejected(error)


def _address_space() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * resource.getpagesize()


@contextlib.contextmanager
def memory_capped():
    """Cap this process's address space at its current size plus MEASURE_MEMORY_MB while the block runs.

    Only the soft limit is lowered (the hard one stays, so the sandbox's own limits can still be
    set by this process afterwards), and the previous limit comes back on the way out."""
    cap_mb = settings.MEASURE_MEMORY_MB
    if not cap_mb:
        yield
        return
    previous = resource.getrlimit(resource.RLIMIT_AS)
    wanted = _address_space() + cap_mb * 2**20
    hard = previous[1]
    soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, previous)
