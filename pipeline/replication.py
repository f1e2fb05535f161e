"""Replication on a fresh draw: the confirmatory run of a probe and the verdict on it.

Once the first measurement is stored and the submission is `in_review`, a submission with a
significant test gets a `Replication` (grading) with a fresh secret seed, and a confirmatory run
on the bulk queue: the same probe in the sandbox with that seed in `PROBE_SEED` and no target
model (sandbox.runner). Its set is checked against the first one's image hashes (`same_draw`),
then measured with the same settings as a re-run of the first measurement, and the two
documents are compared (probekit.replication). Nothing here moves the submission's state or
counts against a quota. A failed, timed-out or rejected run ends `failed` with its reason; a
platform fault is retried as a new run (`MAX_REPLICATION_RUNS` in all); a cancelled or decided
submission stops the work still pending.
"""
from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction

import blobs
from bounty import selectors as bounty_selectors
from bounty import states
from bounty.models import Submission
from grading import services as grading_services
from grading.measurement import measure_image_set
from grading.models import Measurement, Replication, ReplicationStatus
from pipeline import queue as pipeline_queue
from pipeline.bounds import memory_capped
from pipeline.faults import PLATFORM_FAULTS, ROBUSTNESS_TASK
from probekit.confirmatory import NO_TARGET_MODEL
from probekit.replication import compare, image_hashes, is_same_draw
from probekit.robustness import CHANGES, significant_base_tests, transform_set, verdicts
from sandbox.runner import RunResult
from sandbox.status import RunStatus

logger = logging.getLogger(__name__)

MAX_REPLICATION_RUNS = 3
# Robustness's cost cap: sets of at most this many images are re-measured under the 4 changes.
ROBUSTNESS_MAX_IMAGES = 500
ROBUSTNESS_TOO_BIG = ("the set has {n:,} images; robustness re-measures sets of at most {cap:,} images (four "
                      "changes, each a whole measurement), so it was skipped")
# The submission states in which replication work goes on: a cancelled or decided submission stops it.
OPEN_STATES = (states.MEASURED, states.IN_REVIEW, states.NEEDS_INFO)
STOPPED = "stopped: the submission was {state} before its replication ended"
SAME_DRAW = ("the confirmatory run emitted the same images as the first (the probe ignores PROBE_SEED), so "
             "nothing new was drawn: the finding could not be replicated on fresh subjects")
NEEDS_MODEL = ("the probe needs the target model to build its set, and the confirmatory run has none "
               "(a probe must not pick its images by asking the crop): {detail}")
RUN_FAILED = {
    RunStatus.ERROR: "the confirmatory run exited with an error (exit code {exit_code}): {detail}",
    RunStatus.TIMEOUT: "the confirmatory run ran out of time: {detail}",
    RunStatus.LIMIT_EXCEEDED: "the confirmatory run exceeded a sandbox limit: {detail}",
    RunStatus.REJECTED: "the confirmatory run's image set was rejected: {detail}",
    RunStatus.CANCELLED: "the confirmatory run was cancelled: {detail}",
}
PLATFORM_GAVE_UP = "the platform could not run the confirmatory run after {n} attempts ({detail})"
MEASUREMENT_FAILED = "the confirmatory set's measurement failed: {detail}"


def replication_of_run(details: dict) -> Replication | None:
    """The replication a run is the confirmatory run of (None for every other run)."""
    pk = (details or {}).get("replication")
    return Replication.objects.select_related("submission").filter(pk=pk).first() if pk else None


def is_open(submission_id: int) -> bool:
    return Submission.objects.filter(pk=submission_id, state__in=OPEN_STATES).exists()


def stop_if_closed(replication: Replication) -> bool:
    """End a pending replication whose submission was cancelled or decided; True when it did."""
    state = Submission.objects.filter(pk=replication.submission_id).values_list("state", flat=True).first()
    if state in OPEN_STATES:
        return False
    grading_services.replication_finish(replication_id=replication.pk, status=ReplicationStatus.FAILED,
                                        reason=STOPPED.format(state=state or "deleted"))
    return True


def _enqueue_run(replication: Replication, *, countdown: float = 0) -> None:
    pipeline_queue.run_enqueue(submission=replication.submission, attempt=1, countdown=countdown,
                               details={"rerun_of": replication.measurement_id, "replication": replication.pk})


def replication_begin(*, submission, measurement: Measurement, document: dict) -> Replication | None:
    """Called in the transaction that stored the first measurement: the replication row, and its
    confirmatory run queued on bulk once committed (nothing to run when nothing was significant)."""
    replication = grading_services.replication_start(submission=submission, measurement=measurement,
                                                     document=document, pending=settings.REPLICATION)
    if replication is not None and replication.status == ReplicationStatus.PENDING and \
            not replication.submission.runs.filter(details__replication=replication.pk).exists():
        _enqueue_run(replication)
        transaction.on_commit(lambda: current_app.send_task(ROBUSTNESS_TASK, args=[replication.pk],
                                                            queue=settings.CELERY_BULK_QUEUE))
    return replication


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def run_failure_reason(result: RunResult) -> str:
    """Why a confirmatory run failed, in words; a probe that asked for the target model is named."""
    detail = _last_line(result.stderr_tail) or result.error or ""
    if NO_TARGET_MODEL in (result.stderr_tail or ""):
        return NEEDS_MODEL.format(detail=detail)
    template = RUN_FAILED.get(result.status, "the confirmatory run failed: {detail}")
    return template.format(exit_code=result.exit_code, detail=result.error or detail)


def run_failed(*, replication: Replication, result: RunResult) -> str:
    """A confirmatory run that did not emit a set: a platform fault is retried, the probe's ends it."""
    if result.status == RunStatus.PLATFORM_ERROR:
        runs = replication.submission.runs.filter(details__replication=replication.pk).count()
        if runs < MAX_REPLICATION_RUNS and not stop_if_closed(replication):
            _enqueue_run(replication, countdown=5 * runs)
            return "platform error: retrying"
        grading_services.replication_finish(
            replication_id=replication.pk, status=ReplicationStatus.FAILED,
            reason=PLATFORM_GAVE_UP.format(n=runs, detail=result.error or "platform error"))
        return ReplicationStatus.FAILED
    grading_services.replication_finish(replication_id=replication.pk, status=ReplicationStatus.FAILED,
                                        reason=run_failure_reason(result))
    return ReplicationStatus.FAILED


def set_is_same_draw(*, replication: Replication, hashes: list[str]) -> bool:
    """The second set's images against the first document's; ends the replication `same_draw` when they match."""
    first = json.loads(replication.measurement.document_json or "{}")
    if not is_same_draw(image_hashes(first), hashes):
        return False
    grading_services.replication_finish(replication_id=replication.pk, status=ReplicationStatus.SAME_DRAW,
                                        reason=SAME_DRAW)
    return True


def replication_measured(*, measurement: Measurement, text: str) -> str:
    """The confirmatory set's document is stored: the verdict on the first draw's claims."""
    replication = Replication.objects.select_related("measurement").get(confirmatory=measurement)
    status, tests = compare(json.loads(replication.measurement.document_json), json.loads(text))
    reason = "" if status == ReplicationStatus.REPLICATED else (
        "some test significant on the first draw was not significant again in the same direction"
        if status == ReplicationStatus.NOT_REPLICATED else "")
    digest = Measurement.objects.values_list("document_sha256", flat=True).get(pk=measurement.pk)
    grading_services.replication_finish(replication_id=replication.pk, status=status, tests=tests, reason=reason,
                                        document_sha256=digest)
    return status


def replication_measurement_failed(*, measurement: Measurement, error: str) -> None:
    replication = Replication.objects.filter(confirmatory=measurement).first()
    if replication is not None:
        grading_services.replication_finish(replication_id=replication.pk, status=ReplicationStatus.FAILED,
                                            reason=MEASUREMENT_FAILED.format(detail=error))


def confirmatory_stopped(measurement: Measurement) -> bool:
    """True when `measurement` is a confirmatory one whose submission was cancelled or decided (now ended)."""
    replication = Replication.objects.filter(confirmatory=measurement).first()
    return replication is not None and stop_if_closed(replication)


def is_confirmatory(measurement: Measurement) -> bool:
    return Replication.objects.filter(confirmatory=measurement).exists()


@transaction.atomic
def confirmatory_measurement_create(*, replication: Replication, image_set) -> Measurement | None:
    """The confirmatory set's measurement: a re-run of the first one, on bulk; None when the replication ended."""
    measurement = grading_services.measurement_create(submission=replication.submission, image_set=image_set,
                                                      rerun_of_id=replication.measurement_id)
    if not grading_services.replication_confirmatory_set(replication_id=replication.pk, measurement=measurement):
        return None
    return measurement


def _robustness_options(measurement: Measurement) -> dict:
    """The challenge's measurement settings on the base model alone (robustness is about base tests)."""
    options = bounty_selectors.challenge_measurement_settings(challenge=measurement.submission.challenge)
    return dict(options, variants=[], generalization=False)


def robustness_execute(*, replication_id: int) -> str:
    """Re-measure the first set under pad, mirror, jpeg and scale; store each significant base test's verdict.

    Bounded: a set of more than ROBUSTNESS_MAX_IMAGES images is skipped (with the reason), so it
    costs at most 4 × that many images' measurement, on the bulk queue, after `in_review`."""
    replication = Replication.objects.select_related("measurement__image_set", "measurement__submission__challenge") \
        .filter(pk=replication_id).first()
    if replication is None or replication.robustness.get("status") != "pending":
        return "nothing to do"
    measurement = replication.measurement
    first = json.loads(measurement.document_json or "{}")
    if not significant_base_tests(first):
        result = {"status": "not_applicable", "tests": {}}
    elif measurement.image_set.n_images > ROBUSTNESS_MAX_IMAGES:
        result = {"status": "skipped", "tests": {}, "reason": ROBUSTNESS_TOO_BIG.format(
            n=measurement.image_set.n_images, cap=ROBUSTNESS_MAX_IMAGES)}
    else:
        try:
            result = {"status": "done", "tests": verdicts(first, _measured_changes(measurement))}
        except PLATFORM_FAULTS:
            raise
        except Exception as exc:  # noqa: BLE001 - a robustness fault ends it, named; the finding is untouched
            logger.exception("robustness of replication %s failed", replication_id)
            result = {"status": "failed", "tests": {}, "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}
    grading_services.robustness_store(replication_id=replication_id, robustness=result)
    return result["status"]


def _measured_changes(measurement: Measurement) -> dict[str, dict]:
    options = _robustness_options(measurement)
    changed = {}
    with blobs.fetched_tree(measurement.image_set.path, label="imageset") as set_dir, \
            tempfile.TemporaryDirectory(prefix="robustness-") as scratch:
        for change in CHANGES:
            changed_dir = transform_set(Path(set_dir), Path(scratch) / change, change)
            with memory_capped():
                changed[change] = measure_image_set(changed_dir, seed=measurement.seed, workers=1,
                                                    probe_sha256=measurement.submission.probe_sha256, **options)
    return changed
