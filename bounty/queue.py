"""The run queue as participants see it: a fair order, an honest wait, and two Celery queues.

Fairness is round robin over participants: a participant's k-th queued submission comes after
every other participant's (k-1)-th, so a burst from one person never starves the others. The
broker itself is first-in first-out, so the order is enforced when a worker picks a run up
(`pipeline.queue.run_should_wait`): a participant already at `QUEUE_MAX_RUNNING_PER_PARTICIPANT`
running runs waits while someone else's run could start instead. Demo seeding and judges'
re-runs go to the "bulk" Celery queue and yield to any participant's run that could start.
Reads only; runs themselves are the pipeline's (`pipeline.queue`).
"""
from __future__ import annotations

import math
import statistics
from collections import Counter

from django.conf import settings

from bounty import states
from bounty.models import Submission
from grading.models import Measurement, MeasurementStatus
from grading.services import SPLIT_HOLDER
from grading.speed import seconds_per_observation

# Recent measured submissions the wait is estimated from, and the fewest that make an estimate.
ETA_SAMPLE = 20
ETA_MIN_SAMPLES = 3


def _fair_order() -> list[int]:
    """Queued submissions' ids in the order they should start: round robin, bulk last."""
    rows = (Submission.objects.filter(state=states.QUEUED).order_by("state_changed_at", "pk")
            .values_list("pk", "participant_id", "is_demo"))
    seen: Counter = Counter()
    keyed = []
    for index, (pk, participant, demo) in enumerate(rows):
        seen[(participant, demo)] += 1
        keyed.append(((demo, seen[(participant, demo)], index), pk))
    return [pk for _key, pk in sorted(keyed)]


def queue_position(*, submission: Submission) -> int | None:
    """1 for the next submission to start; None unless queued."""
    if submission.state != states.QUEUED:
        return None
    order = _fair_order()
    return order.index(submission.pk) + 1 if submission.pk in order else None


def typical_service_s() -> float | None:
    """Median seconds from a run's start to its measurement's end, over recent submissions."""
    rows = (Measurement.objects.filter(status=MeasurementStatus.DONE, rerun_of__isnull=True, finished_at__isnull=False,
                                       image_set__run__started_at__isnull=False)
            .order_by("-finished_at").values_list("finished_at", "image_set__run__started_at")[:ETA_SAMPLE])
    durations = [(finished - started).total_seconds() for finished, started in rows if finished >= started]
    if len(durations) < ETA_MIN_SAMPLES:
        return None
    return statistics.median(durations)


def estimated_service_s(*, model: str | None) -> float | None:
    """Without enough measured history: a recent run's typical wall time plus a recent set's typical
    size × the model's measured speed (`grading.speed`); None while the speed or any set is unknown."""
    speed = seconds_per_observation(model=model) if model else None
    recent = list(Measurement.objects.filter(rerun_of__isnull=True).order_by("-pk")
                  .values_list("image_set__n_images", "image_set__run__wall_s")[:ETA_SAMPLE])
    if speed is None or not recent:
        return None
    walls = [wall for _size, wall in recent if wall is not None]
    return (statistics.median(walls) if walls else 0.0) + statistics.median(size for size, _wall in recent) * speed


def queue_eta_s(*, position: int | None, model: str | None = None) -> int | None:
    """Seconds until the submission at `position` is expected to start running, or None.

    Each of `WORKER_CONCURRENCY` slots frees once per typical run+measure time, so the queue
    moves one place every median ÷ concurrency seconds. Below `ETA_MIN_SAMPLES` measured
    submissions the typical time is estimated from the challenge model's speed (`model`).
    """
    if position is None:
        return None
    service = typical_service_s()
    if service is None:
        service = estimated_service_s(model=model)
    if service is None:
        return None
    return math.ceil(position * service / max(1, settings.WORKER_CONCURRENCY))


def measurement_eta_s(*, measurement: Measurement, model: str) -> int | None:
    """Seconds until a measurement in progress is done: its observations left × the model's speed,
    over the worker slots when it is split into chunks; None before it starts or without a speed."""
    speed = seconds_per_observation(model=model)
    if speed is None or not measurement.progress_total:
        return None
    left = max(0, measurement.progress_total - measurement.progress_done)
    parallel = max(1, settings.WORKER_CONCURRENCY) if measurement.lease_holder == SPLIT_HOLDER else 1
    return math.ceil(left * speed / parallel)
