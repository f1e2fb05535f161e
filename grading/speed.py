"""How fast each target model measures here: seconds per observation, learnt from finished work.

Every finished chunk and every unsplit measurement records its wall time over its observation
count (an exponentially weighted mean, so a slower host or a new model version moves it within a
few records). The queue's wait estimate and the measurement's chunk plan read it; nothing else
does. The records live in the shared cache (Redis), so every worker and web process sees one
figure per model; losing them only means the planner falls back to its fixed chunk size and the
wait estimate to its measured history.
"""
from __future__ import annotations

from django.core.cache import cache

# Weight of the newest record in the running mean.
SPEED_WEIGHT = 0.3
# A record forgotten after this long without a new one (a week: models and hosts change).
SPEED_TTL_S = 7 * 24 * 3600


def _key(model: str) -> str:
    return f"model-speed:{model}"


def speed_record(*, model: str, observations: int, seconds: float) -> None:
    """Fold one finished piece of work (`observations` model runs in `seconds`) into the model's speed."""
    if observations <= 0 or seconds <= 0:
        return
    sample = seconds / observations
    before = cache.get(_key(model))
    value = sample if before is None else (1 - SPEED_WEIGHT) * float(before) + SPEED_WEIGHT * sample
    cache.set(_key(model), value, SPEED_TTL_S)


def seconds_per_observation(*, model: str) -> float | None:
    """The model's measured seconds per observation on this platform, or None before any record."""
    value = cache.get(_key(model))
    return float(value) if value is not None else None
