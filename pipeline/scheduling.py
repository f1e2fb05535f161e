"""Which work waits for which: queues by who waits for the result, measurements cut by time.

Latency is kept by three rules (docs/architecture.md, "The queue"):

- **Two queues, consumed in order.** Every worker takes from the default queue (participants'
  runs, their measurements' planning and merges, small measurements) before the bulk queue (the
  chunks of big measurements, demo seeding, judges' re-runs) — the Redis transport's `priority`
  queue order, set in the settings. A slot that frees takes the waiting participant's work first.
- **Chunks bounded in time.** A big measurement is cut into chunks of about
  `MEASURE_CHUNK_TARGET_S` seconds each, from the model's measured speed (`grading.speed`), so no
  slot is held by one chunk for long: a participant's run waits at most about one chunk for a slot,
  however big the measurements in flight.
- **Small measurements stay whole.** A measurement expected to take at most
  `MEASURE_SPLIT_MIN_S` runs as one task on the default queue: it never waits behind big
  measurements' chunks. A participant's measurement split but expected to take at most
  `MEASURE_BULK_MIN_S` keeps its chunks on the default queue too (`chunk_queue_name`).

Without a speed figure for a model (a new platform) the planner times the model on a couple of the
set's units first; with `MEASURE_CHUNK_TARGET_S` = 0 it falls back to chunks of at most
`MEASURE_CHUNK_SIZE` observations (the tests' setting, so they split small sets).
"""
from __future__ import annotations

import time

from django.conf import settings

import blobs
from grading.measurement import measure_chunk
from grading.models import Measurement
from grading.speed import seconds_per_observation, speed_record
from pipeline.bounds import memory_capped

# Units timed per model when its speed is unknown (the first also loads the model: it is not timed).
CALIBRATION_UNITS = 2


def measurement_queue_name(*, measurement: Measurement) -> str:
    """A demo submission's or a judge's re-run's measurement goes to the bulk queue; a participant's not."""
    if measurement.rerun_of_id or measurement.submission.is_demo:
        return settings.CELERY_BULK_QUEUE
    return settings.CELERY_TASK_DEFAULT_QUEUE


def chunk_queue_name(*, measurement: Measurement, chunks: list[tuple[str, int, int]]) -> str:
    """Where a split measurement's chunks go: a participant's measurement expected to take at most
    `MEASURE_BULK_MIN_S` keeps the default queue (split only to use every slot); a bigger one, one
    of unknown cost, and any demo or re-run measurement are bulk work."""
    if measurement_queue_name(measurement=measurement) == settings.CELERY_BULK_QUEUE:
        return settings.CELERY_BULK_QUEUE
    speeds = {name: seconds_per_observation(model=name) for name in {name for name, _start, _stop in chunks}}
    if not all(speeds.values()):
        return settings.CELERY_BULK_QUEUE
    expected_s = sum((stop - start) * speeds[name] for name, start, stop in chunks)
    return settings.CELERY_TASK_DEFAULT_QUEUE if expected_s <= settings.MEASURE_BULK_MIN_S else settings.CELERY_BULK_QUEUE


def chunk_plan(*, units: int, models: list[str], speeds: dict[str, float | None], slots: int, max_units: int,
               target_s: float, split_min_s: float) -> list[tuple[str, int, int]]:
    """(model, start, stop) per chunk, or [] to measure in one task.

    With every model's speed known and a time target: whole when the expected time is at most
    `split_min_s`, else chunks of about `target_s` each (never over `max_units`). Otherwise by
    size: chunks of equal size, none over `max_units` observations, as many as a multiple of the
    worker slots (every slot gets the same work; none is left to run alone at the end).
    """
    if units <= 0 or not models:
        return []
    if target_s > 0 and all(speeds.get(name) for name in models):
        if units * sum(speeds[name] for name in models) <= split_min_s:
            return []
        plan = []
        for name in models:
            per_chunk = max(1, min(max_units, int(target_s / speeds[name])))
            count = -(-units // per_chunk)
            plan += [(name, units * k // count, units * (k + 1) // count) for k in range(count)]
        return plan
    if units * len(models) <= max_units:
        return []
    wanted = -(-units * len(models) // max_units)
    wanted = -(-wanted // max(1, slots)) * max(1, slots)
    per_model = min(units, -(-wanted // len(models)))
    return [(name, units * k // per_model, units * (k + 1) // per_model) for name in models for k in range(per_model)]


def model_speeds(*, set_dir, models: list[str], units: int, measure_options: dict) -> dict[str, float | None]:
    """Each model's seconds per observation; a model never measured here is timed on this set first.

    Only worth it when the set could be split (a time target is set and the set has more units than
    the calibration itself uses); the timing's observations are thrown away.
    """
    speeds = {name: seconds_per_observation(model=name) for name in models}
    if settings.MEASURE_CHUNK_TARGET_S <= 0 or units <= CALIBRATION_UNITS + 1:
        return speeds
    for name in [name for name, speed in speeds.items() if not speed]:
        with blobs.scratch(label="calibrate") as scratch, memory_capped():
            measure_chunk(set_dir, model=name, start=0, stop=1, cache_dir=scratch, **measure_options)
            started = time.monotonic()
            done = measure_chunk(set_dir, model=name, start=1, stop=1 + CALIBRATION_UNITS, cache_dir=scratch,
                                 **measure_options)
            speed_record(model=name, observations=done, seconds=time.monotonic() - started)
        speeds[name] = seconds_per_observation(model=name)
    return speeds
