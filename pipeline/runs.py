"""Run orchestration: queued → running in the sandbox → the image set stored → measurement queued.

`run_execute` is called by one Celery task with a run id. It first takes the run's lease and
compares-and-sets its status, so a redelivered or duplicated task finds the row moved (or the
lease held by a live worker) and does nothing. A task redelivered after its worker died finds
the lease expired and takes the run over as the next attempt; attempts are capped, so a run
that kills its worker every time still ends (docs/failure-model.md).
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import blobs
from bounty import selectors as bounty_selectors
from bounty import services, states
from bounty.models import Submission
from grading import services as grading_services
from pipeline import queue as pipeline_queue
from pipeline import replication
from pipeline.bounds import check_plan
from pipeline.faults import PLATFORM_FAULTS
from pipeline.leases import Lease
from pipeline.measurements import enqueue_measurement
from pipeline.models import ImageSet, ProbeRun
from probekit.imageset import ImageSetRejected
from sandbox.runner import RunResult, run_probe
from sandbox.status import RunStatus

logger = logging.getLogger(__name__)

# Attempts of one submission's probe (platform retries and takeovers after a dead worker together).
MAX_RUN_ATTEMPTS = 3

FAILED_REASONS = {
    RunStatus.ERROR: "The probe exited with an error (exit code {exit_code}). See its stderr below.",
    RunStatus.TIMEOUT: "The probe ran out of time: {error}",
    RunStatus.LIMIT_EXCEEDED: "The probe exceeded a sandbox limit: {error}",
    RunStatus.REJECTED: "The probe's output was rejected: {error}",
}
TAKEOVERS_EXHAUSTED = ("the run's worker was lost {attempts} times (the probe may crash its worker); "
                       "stopped after {attempts} attempts")


def _platform_error(error: str) -> RunResult:
    """A run that ended on the platform's side, not the probe's."""
    return RunResult(status=RunStatus.PLATFORM_ERROR, exit_code=None, wall_s=0.0, error=error)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim_run(run_id: str) -> ProbeRun | None:
    """queued → running, or take over a running run whose worker died (its lease expired)."""
    now = timezone.now()
    if ProbeRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(status=RunStatus.RUNNING, started_at=now,
                                                                    worker=_worker_name()):
        return ProbeRun.objects.select_related("submission__challenge").get(pk=run_id)
    run = ProbeRun.objects.filter(pk=run_id).select_related("submission__challenge").first()
    if run is None or run.status != RunStatus.RUNNING:
        return None  # finished or cancelled: a redelivery has nothing to do
    if run.attempt >= MAX_RUN_ATTEMPTS:
        _store_run_result(run=run, result=_platform_error(TAKEOVERS_EXHAUSTED.format(attempts=run.attempt)), final=True)
        return None
    # Redelivered after the worker died mid-run: restart it, recorded as the next attempt.
    details = dict(run.details, restarted_from=run.worker, restarted_at=now.isoformat())
    moved = ProbeRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, worker=run.worker).update(
        worker=_worker_name(), started_at=now, attempt=run.attempt + 1, details=details
    )
    return ProbeRun.objects.select_related("submission__challenge").get(pk=run_id) if moved else None


def run_execute(*, run_id: str) -> str:
    """Execute one probe run in the sandbox and store its outcome. Returns what happened."""
    with Lease("run", run_id) as lease:
        if not lease.acquired:
            return "lease held by a live worker"
        if pipeline_queue.run_should_wait(run_id=run_id):
            pipeline_queue.run_defer(run_id=run_id)
            return "deferred: another participant's run goes first"
        run = _claim_run(run_id)
        if run is None:
            return "nothing to do"
        submission = run.submission
        rerun = _is_rerun(run)
        confirming = replication.replication_of_run(run.details)
        if confirming is not None and replication.stop_if_closed(confirming):
            ProbeRun.objects.filter(pk=run_id).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
            return RunStatus.CANCELLED
        if submission.state == states.CANCELLED and not rerun:
            ProbeRun.objects.filter(pk=run_id).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
            return RunStatus.CANCELLED
        if not rerun:  # a judge's re-run leaves the submission where it is
            services.submission_transition(
                submission_id=submission.pk, from_states=(states.QUEUED, states.RUNNING), to_state=states.RUNNING,
                reason="the probe is running in the sandbox",
            )
        out_dir = settings.RUNS_DIR / str(run.pk)
        shutil.rmtree(out_dir, ignore_errors=True)  # a previous attempt's leftovers
        limits = bounty_selectors.challenge_limits(challenge=submission.challenge)

        def should_cancel() -> bool:
            if confirming is not None:  # a confirmatory run stops when the submission is cancelled or decided
                return not replication.is_open(submission.pk)
            return not rerun and Submission.objects.filter(pk=submission.pk, state=states.CANCELLED).exists()

        try:
            grading_services.registered_models_fetch(names=[submission.challenge.model_name])
            target_model = bounty_selectors.challenge_target_model(challenge=submission.challenge)
            with blobs.fetched_file(submission.probe) as probe_path:
                result = run_probe(
                    probe_path, backend=run.backend, limits=limits, out_dir=out_dir,
                    run_id=f"{run.pk}-{run.attempt}",  # one sandbox per attempt
                    should_cancel=should_cancel, target_model=target_model,
                    seed=confirming.seed if confirming is not None else None,  # no target model then
                )
        except PLATFORM_FAULTS:
            raise  # the task retries with backoff
        except Exception as exc:  # noqa: BLE001 - an unforeseen fault of the platform: retried, then final
            logger.exception("run %s: the sandbox runner failed", run_id)
            result = _platform_error(f"internal error in the runner ({type(exc).__name__})")
        try:
            return _store_run_result(run=run, result=result)
        finally:
            if not blobs.is_local():  # the set is in the object storage now (or the run failed)
                shutil.rmtree(out_dir, ignore_errors=True)


def _is_rerun(run: ProbeRun) -> bool:
    return bool(run.details.get("rerun_of"))


def _image_set_upload(*, path: Path) -> str:
    """Store the copied-out set in the object storage; its key (ImageSet.path) is its place under VAR_DIR."""
    key = Path(path).resolve().relative_to(settings.VAR_DIR).as_posix()
    blobs.put_tree(key, path)
    return key


def _image_set_take(*, run: ProbeRun, result: RunResult):
    """The copied-out set's facts as the runner validated them (with the challenge's caps), checked
    against the measurement's plan, then the key it is stored under: (facts, key).

    Raises ImageSetRejected when the plan's bounds refuse the set (pipeline.bounds)."""
    facts = result.image_set
    check_plan(facts, bounty_selectors.challenge_measurement_settings(challenge=run.submission.challenge))
    return facts, _image_set_upload(path=result.image_set_path)


def _image_set_create(*, run: ProbeRun, key: str, n_images: int, facts) -> ImageSet:
    """The stored image set's row."""
    return ImageSet.objects.create(
        run=run, path=key, n_images=n_images or len(facts.items), title=facts.title[:300],
        attribute=facts.attribute[:100], groups=list(facts.groups), manifest_sha256=facts.manifest_sha256,
    )


def _run_fields(run: ProbeRun, result: RunResult) -> dict:
    return dict(
        status=result.status, exit_code=result.exit_code, wall_s=result.wall_s,
        stdout_tail=result.stdout_tail or "", stderr_tail=result.stderr_tail or "",
        error=result.error or "", details=dict(run.details, **(result.details or {})), finished_at=timezone.now(),
    )


def _store_rerun_result(*, run: ProbeRun, result: RunResult, fields: dict) -> str:
    """A judge's re-run or a confirmatory run: store its run and measure it beside the original; no state moves."""
    confirming = replication.replication_of_run(run.details)
    facts = key = None
    if result.status == RunStatus.OK:
        try:
            facts, key = _image_set_take(run=run, result=result)
        except ImageSetRejected as exc:
            fields = dict(fields, status=RunStatus.REJECTED, error=str(exc))
            result = RunResult(status=RunStatus.REJECTED, exit_code=result.exit_code, wall_s=result.wall_s, error=str(exc))
    with transaction.atomic():
        if not ProbeRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields):
            return "already stored"
        if confirming is not None:
            return _store_confirmatory_result(run=run, result=result, facts=facts, key=key, confirming=confirming)
        if result.status != RunStatus.OK:
            return result.status
        image_set = _image_set_create(run=run, key=key, n_images=result.n_images, facts=facts)
        measurement = grading_services.measurement_create(
            submission=run.submission, image_set=image_set, rerun_of_id=run.details["rerun_of"])
        transaction.on_commit(lambda: enqueue_measurement(measurement_id=measurement.pk))
    return RunStatus.OK


def _store_confirmatory_result(*, run: ProbeRun, result: RunResult, facts, key, confirming) -> str:
    """A replication's run is stored (inside its transaction): failed, same draw, or measured next."""
    if replication.stop_if_closed(confirming):
        return "replication stopped"
    if result.status != RunStatus.OK:
        return replication.run_failed(replication=confirming, result=result)
    image_set = _image_set_create(run=run, key=key, n_images=result.n_images, facts=facts)
    if replication.set_is_same_draw(replication=confirming, hashes=[item.sha256 for item in facts.items]):
        return "replication: same draw"
    measurement = replication.confirmatory_measurement_create(replication=confirming, image_set=image_set)
    if measurement is not None:
        transaction.on_commit(lambda: enqueue_measurement(measurement_id=measurement.pk))
    return RunStatus.OK


def _store_run_result(*, run: ProbeRun, result: RunResult, final: bool = False) -> str:
    submission = run.submission
    fields = _run_fields(run, result)
    if _is_rerun(run):
        return _store_rerun_result(run=run, result=result, fields=fields)
    if Submission.objects.filter(pk=submission.pk, state=states.CANCELLED).exists():
        fields["status"] = RunStatus.CANCELLED
        ProbeRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields)
        return RunStatus.CANCELLED
    if result.status == RunStatus.OK:
        try:
            facts, key = _image_set_take(run=run, result=result)
            return _store_image_set(run=run, result=result, fields=fields, facts=facts, key=key)
        except ImageSetRejected as exc:  # the set is beyond the measurement plan's bounds
            result = RunResult(status=RunStatus.REJECTED, exit_code=result.exit_code, wall_s=result.wall_s,
                               stdout_tail=result.stdout_tail, stderr_tail=result.stderr_tail, error=str(exc))
            fields = _run_fields(run, result)
    if result.status == RunStatus.PLATFORM_ERROR:
        return _store_platform_error(run=run, result=result, fields=fields, final=final)
    with transaction.atomic():
        if not ProbeRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields):
            return "already stored"
        reason = FAILED_REASONS.get(result.status, "{error}").format(exit_code=result.exit_code, error=result.error)
        services.submission_transition(
            submission_id=submission.pk, from_states=(states.RUNNING,), to_state=states.FAILED, reason=reason,
        )
    return result.status


def _store_image_set(*, run: ProbeRun, result: RunResult, fields: dict, facts, key: str) -> str:
    submission = run.submission
    with transaction.atomic():  # rows only: the set was read and hashed before
        if not ProbeRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields):
            return "already stored"
        image_set = _image_set_create(run=run, key=key, n_images=result.n_images, facts=facts)
        measurement = grading_services.measurement_create(submission=submission, image_set=image_set)
        services.submission_transition(
            submission_id=submission.pk, from_states=(states.RUNNING,), to_state=states.MEASURING,
            reason=f"the probe emitted {image_set.n_images} images; measuring the target model",
        )
        transaction.on_commit(lambda: enqueue_measurement(measurement_id=measurement.pk))
    return RunStatus.OK


def _store_platform_error(*, run: ProbeRun, result: RunResult, fields: dict, final: bool) -> str:
    """Not the probe's fault: retried as a new run with backoff, at most MAX_RUN_ATTEMPTS in all."""
    submission = run.submission
    with transaction.atomic():
        if not ProbeRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields):
            return "already stored"
        services.submission_transition(
            submission_id=submission.pk, from_states=(states.RUNNING,), to_state=states.PLATFORM_ERROR,
            reason=f"The platform could not run the sandbox ({result.error}). This is not your probe's fault "
            "and does not count against your quota.",
        )
        attempts = max(run.attempt, submission.runs.count())
        if not final and attempts < MAX_RUN_ATTEMPTS:
            services.submission_transition(
                submission_id=submission.pk, from_states=(states.PLATFORM_ERROR,), to_state=states.QUEUED,
                reason=f"retrying after a platform error (attempt {attempts + 1} of {MAX_RUN_ATTEMPTS})",
            )
            pipeline_queue.run_enqueue(submission=submission, countdown=5 * (attempts + 1))
    return RunStatus.PLATFORM_ERROR


