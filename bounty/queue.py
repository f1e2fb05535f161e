"""The run queue as participants see it: a fair order, an honest wait, and two Celery queues.

Fairness is round robin over participants: a participant's k-th queued submission comes after
every other participant's (k-1)-th, so a burst from one person never starves the others. The
broker itself is first-in first-out, so the order is enforced when a worker picks a run up
(`run_should_wait`): a participant already at `QUEUE_MAX_RUNNING_PER_PARTICIPANT` running runs
waits while someone else's run could start instead. Demo seeding and judges' re-runs go to the
"bulk" Celery queue and yield to any participant's run that could start. Reads only: the
deferral itself is `bounty.services.run_defer`.
"""
from __future__ import annotations

import math
import statistics
from collections import Counter

from django.conf import settings

from bounty import states
from bounty.models import Submission
from grading.models import Measurement, MeasurementStatus
from sandbox.models import ProbeRun
from sandbox.status import RunStatus

# Recent measured submissions the wait is estimated from, and the fewest that make an estimate.
ETA_SAMPLE = 20
ETA_MIN_SAMPLES = 3


def run_is_bulk(*, details: dict, is_demo: bool) -> bool:
    """A judge's re-run or a seeded demo submission: work no participant is waiting for."""
    return bool(is_demo or (details or {}).get("rerun_of"))


def run_queue_name(*, run_id: str) -> str:
    """The Celery queue a run's task goes to."""
    row = ProbeRun.objects.filter(pk=run_id).values_list("details", "submission__is_demo").first()
    if row is not None and run_is_bulk(details=row[0], is_demo=row[1]):
        return settings.CELERY_BULK_QUEUE
    return settings.CELERY_TASK_DEFAULT_QUEUE


def _runs(status: str) -> list[tuple[str, int, bool]]:
    rows = ProbeRun.objects.filter(status=status).values_list("pk", "submission__participant_id", "details",
                                                              "submission__is_demo")
    return [(str(pk), participant, run_is_bulk(details=details, is_demo=demo))
            for pk, participant, details, demo in rows]


def run_should_wait(*, run_id: str) -> bool:
    """True when another queued run should start before this one (the worker defers it).

    Never blocks a run for nothing: it waits only while some other run could start at once.
    """
    queued = _runs(RunStatus.QUEUED)
    this = next((row for row in queued if row[0] == run_id), None)
    if this is None:
        return False  # running (a takeover) or finished: the task decides
    cap = settings.QUEUE_MAX_RUNNING_PER_PARTICIPANT
    running = Counter(participant for _pk, participant, bulk in _runs(RunStatus.RUNNING) if not bulk)
    startable = {participant for pk, participant, bulk in queued
                 if not bulk and pk != run_id and running[participant] < cap}
    _pk, participant, bulk = this
    if bulk:
        return bool(startable)
    return running[participant] >= cap and bool(startable - {participant})


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


def queue_eta_s(*, position: int | None) -> int | None:
    """Seconds until the submission at `position` is expected to start running, or None.

    Each of `WORKER_CONCURRENCY` slots frees once per typical run+measure time, so the queue
    moves one place every median ÷ concurrency seconds.
    """
    if position is None:
        return None
    service = typical_service_s()
    if service is None:
        return None
    return math.ceil(position * service / max(1, settings.WORKER_CONCURRENCY))
