"""How runs are queued, dispatched and deferred: the writes and dispatch reads of the run queue.

A run is a `ProbeRun` row, then its task once the row is committed (`run_enqueue`). The domain
asks for one by the dotted path `settings.RUN_ENQUEUE`, so it never imports the pipeline. The order
participants see (`queue_position`, `eta_s`) is `bounty.queue`; this module enforces it when a
worker picks a run up (`run_should_wait`) and puts a run back behind the others (`run_defer`).
"""
from __future__ import annotations

from collections import Counter

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bounty import errors
from bounty import services as bounty_services
from bounty.errors import BountyError
from bounty.models import Submission
from grading.models import MEASUREMENT_IN_FLIGHT, Measurement, MeasurementStatus
from pipeline.faults import RUN_TASK
from pipeline.models import ProbeRun
from sandbox.status import RUN_IN_FLIGHT, RunStatus


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


def run_enqueue(*, submission: Submission, details: dict | None = None, countdown: float = 0,
                attempt: int | None = None) -> ProbeRun:
    """The one way a run is queued: a ProbeRun row, then its task once the row is committed."""
    run = ProbeRun.objects.create(submission=submission, backend=settings.SANDBOX_BACKEND,
                                  attempt=attempt or submission.runs.count() + 1, details=details or {})
    transaction.on_commit(lambda: enqueue_run(run_id=str(run.pk), countdown=countdown))
    return run


def enqueue_run(*, run_id: str, countdown: float = 0) -> None:
    """Send (or re-send) a run's task; the task compares-and-sets, so a duplicate does nothing."""
    current_app.send_task(RUN_TASK, args=[run_id], countdown=countdown, queue=run_queue_name(run_id=run_id))


def run_defer(*, run_id: str) -> None:
    """Put a queued run back behind the others (`run_should_wait` said so).

    Its `queued_at` moves on, so reconcile sees a run the broker holds, not a lost one.
    """
    if ProbeRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(queued_at=timezone.now()):
        enqueue_run(run_id=run_id, countdown=settings.QUEUE_DEFER_S)


def submission_rerun(*, submission: Submission, actor) -> ProbeRun:
    """A judge re-runs the probe (same file, same model version) to compare the two documents.

    The submission keeps its state; the new run and measurement sit beside the original one.
    """
    original = Measurement.objects.filter(submission=submission, status=MeasurementStatus.DONE,
                                          rerun_of__isnull=True).first()
    if original is None:
        raise BountyError(errors.RERUN_NEEDS_MEASUREMENT)
    if Measurement.objects.filter(rerun_of=original, status__in=MEASUREMENT_IN_FLIGHT,
                                  confirmatory_of__isnull=True).exists() or \
            ProbeRun.objects.filter(submission=submission, status__in=RUN_IN_FLIGHT,
                                    details__rerun_of=original.pk).exclude(details__has_key="replication").exists():
        raise BountyError(errors.RERUN_IN_PROGRESS)
    with transaction.atomic(durable=True):
        run = run_enqueue(submission=submission,
                          details={"rerun_of": original.pk, "requested_by": getattr(actor, "username", "")})
        bounty_services.submission_audit(submission=submission, actor=actor,
                                         reason=f"re-run requested to reproduce measurement #{original.pk}")
    return run
