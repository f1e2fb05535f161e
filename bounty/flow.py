"""The flow that chains the stages: sandbox run → image set → measurement → score → review.

Each step is a service called by one Celery task (bounty.tasks) with an id. A step first
checks, with a compare-and-set, that the world is as expected; a redelivered or duplicated
task therefore finds the row already moved and does nothing. A run in progress also holds a
short-lived Redis lease, renewed while the sandbox runs: a task redelivered after its worker
died finds the lease expired and takes the run over as a new attempt; one redelivered while
the first worker is alive finds the lease held and leaves.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import threading
from datetime import timedelta
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bounty import services, states
from bounty.models import Submission
from grading.models import Measurement, Score
from sandbox.models import RUN_CANCELLED, RUN_QUEUED, RUN_RUNNING, ImageSet, ProbeRun

logger = logging.getLogger(__name__)

LEASE_TTL_S = 15
PLATFORM_RETRIES = 3

FAILED_REASONS = {
    "error": "The probe exited with an error (exit code {exit_code}). See its stderr below.",
    "timeout": "The probe ran out of time: {error}",
    "limit_exceeded": "The probe exceeded a sandbox limit: {error}",
    "rejected": "The probe's output was rejected: {error}",
}


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


class RunLease:
    """A Redis key that says "a live worker is executing this run", renewed in the background."""

    def __init__(self, run_id: str):
        self.key = f"cropbias:run-lease:{run_id}"
        self.token = f"{socket.gethostname()}:{os.getpid()}:{time.monotonic_ns()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        return bool(_redis().set(self.key, self.token, nx=True, ex=LEASE_TTL_S))

    def _renew(self) -> None:
        client = _redis()
        while not self._stop.wait(LEASE_TTL_S / 3):
            try:
                if client.get(self.key) == self.token.encode():
                    client.expire(self.key, LEASE_TTL_S)
            except redis.RedisError:
                logger.warning("could not renew the lease %s; retrying", self.key)

    def __enter__(self) -> "RunLease":
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        try:
            client = _redis()
            if client.get(self.key) == self.token.encode():
                client.delete(self.key)
        except redis.RedisError:
            pass  # the lease expires by itself

    @staticmethod
    def held(run_id: str) -> bool:
        return bool(_redis().exists(f"cropbias:run-lease:{run_id}"))


def _claim_run(run_id: str) -> ProbeRun | None:
    """queued → running, or take over a running run whose worker died (its lease expired)."""
    now = timezone.now()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if ProbeRun.objects.filter(pk=run_id, status=RUN_QUEUED).update(status=RUN_RUNNING, started_at=now, worker=worker):
        return ProbeRun.objects.select_related("submission__challenge").get(pk=run_id)
    run = ProbeRun.objects.filter(pk=run_id).select_related("submission__challenge").first()
    if run is None or run.status != RUN_RUNNING:
        return None  # finished or cancelled: a redelivery has nothing to do
    # Redelivered after the worker died mid-run: restart it, recorded as the next attempt.
    details = dict(run.details, restarted_from=run.worker, restarted_at=now.isoformat())
    moved = ProbeRun.objects.filter(pk=run_id, status=RUN_RUNNING, worker=run.worker).update(
        worker=worker, started_at=now, attempt=run.attempt + 1, details=details
    )
    return ProbeRun.objects.select_related("submission__challenge").get(pk=run_id) if moved else None


def run_execute(*, run_id: str) -> str:
    """Execute one probe run in the sandbox and store its outcome. Returns what happened."""
    from sandbox.limits import Limits
    from sandbox.runner import run_probe

    lease = RunLease(run_id)
    if not lease.acquire():
        return "lease held by a live worker"
    with lease:
        run = _claim_run(run_id)
        if run is None:
            return "nothing to do"
        submission = run.submission
        rerun = _is_rerun(run)
        if submission.state == states.CANCELLED and not rerun:
            ProbeRun.objects.filter(pk=run_id).update(status=RUN_CANCELLED, finished_at=timezone.now())
            return "cancelled"
        if not rerun:  # a judge's re-run leaves the submission where it is
            services.submission_transition(
                submission_id=submission.pk, from_states=(states.QUEUED, states.RUNNING), to_state=states.RUNNING,
                reason="the probe is running in the sandbox",
            )
        out_dir = settings.RUNS_DIR / str(run.pk)
        shutil.rmtree(out_dir, ignore_errors=True)  # a previous attempt's leftovers
        probe_path = Path(submission.probe.path)
        limits = Limits.from_dict(submission.challenge.limits)

        def should_cancel() -> bool:
            return not rerun and Submission.objects.filter(pk=submission.pk, state=states.CANCELLED).exists()

        result = run_probe(
            probe_path, backend=run.backend, limits=limits, out_dir=out_dir, run_id=f"{run.pk}-{run.attempt}",  # one sandbox per attempt
            should_cancel=should_cancel,
        )
        return _store_run_result(run=run, result=result)


def _is_rerun(run: ProbeRun) -> bool:
    return bool(run.details.get("rerun_of"))


def _store_rerun_result(*, run: ProbeRun, result, fields: dict) -> str:
    """A judge's re-run: store its run and measure it beside the original; no state moves."""
    with transaction.atomic():
        if not ProbeRun.objects.filter(pk=run.pk, status=RUN_RUNNING).update(**fields):
            return "already stored"
        if result.status != "ok":
            return result.status
        image_set = _image_set_create(run=run, path=result.image_set_path, n_images=result.n_images)
        submission = run.submission
        measurement = Measurement.objects.create(
            submission=submission, image_set=image_set, model_name=submission.challenge.model_name,
            probe_sha256=submission.probe_sha256, manifest_sha256=image_set.manifest_sha256,
            progress_total=image_set.n_images, rerun_of_id=run.details["rerun_of"],
        )
        transaction.on_commit(lambda: enqueue_measurement(measurement_id=measurement.pk))
    return "ok"


def _store_run_result(*, run: ProbeRun, result) -> str:
    submission = run.submission
    fields = dict(
        status=result.status, exit_code=result.exit_code, wall_s=result.wall_s,
        stdout_tail=result.stdout_tail or "", stderr_tail=result.stderr_tail or "",
        error=result.error or "", details=dict(run.details, **(result.details or {})), finished_at=timezone.now(),
    )
    if _is_rerun(run):
        return _store_rerun_result(run=run, result=result, fields=fields)
    if Submission.objects.filter(pk=submission.pk, state=states.CANCELLED).exists():
        fields["status"] = RUN_CANCELLED
        ProbeRun.objects.filter(pk=run.pk, status=RUN_RUNNING).update(**fields)
        return "cancelled"
    if result.status == "ok":
        with transaction.atomic():
            if not ProbeRun.objects.filter(pk=run.pk, status=RUN_RUNNING).update(**fields):
                return "already stored"
            image_set = _image_set_create(run=run, path=result.image_set_path, n_images=result.n_images)
            measurement = Measurement.objects.create(
                submission=submission, image_set=image_set, model_name=submission.challenge.model_name,
                probe_sha256=submission.probe_sha256, manifest_sha256=image_set.manifest_sha256,
                progress_total=image_set.n_images,
            )
            services.submission_transition(
                submission_id=submission.pk, from_states=(states.RUNNING,), to_state=states.MEASURING,
                reason=f"the probe emitted {image_set.n_images} images; measuring the target model",
            )
            transaction.on_commit(lambda: enqueue_measurement(measurement_id=measurement.pk))
        return "ok"
    if result.status == "platform_error":
        with transaction.atomic():
            if not ProbeRun.objects.filter(pk=run.pk, status=RUN_RUNNING).update(**fields):
                return "already stored"
            services.submission_transition(
                submission_id=submission.pk, from_states=(states.RUNNING,), to_state=states.PLATFORM_ERROR,
                reason=f"The platform could not run the sandbox ({result.error}). This is not your probe's fault "
                "and does not count against your quota.",
            )
            if run.attempt < PLATFORM_RETRIES:
                retry = submission.runs.count() + 1
                new_run = ProbeRun.objects.create(submission=submission, backend=run.backend, attempt=retry)
                services.submission_transition(
                    submission_id=submission.pk, from_states=(states.PLATFORM_ERROR,), to_state=states.QUEUED,
                    reason=f"retrying after a platform error (attempt {retry} of {PLATFORM_RETRIES})",
                )
                transaction.on_commit(lambda: services.enqueue_run(run_id=str(new_run.pk), countdown=5 * retry))
        return "platform_error"
    with transaction.atomic():
        if not ProbeRun.objects.filter(pk=run.pk, status=RUN_RUNNING).update(**fields):
            return "already stored"
        reason = FAILED_REASONS.get(result.status, "{error}").format(exit_code=result.exit_code, error=result.error)
        services.submission_transition(
            submission_id=submission.pk, from_states=(states.RUNNING,), to_state=states.FAILED, reason=reason,
        )
    return result.status


def _image_set_create(*, run: ProbeRun, path: Path, n_images: int) -> ImageSet:
    from probekit.imageset import validate_image_set

    image_set = validate_image_set(path)  # already validated by the runner; read its facts
    relative = Path(path).resolve().relative_to(settings.VAR_DIR)
    return ImageSet.objects.create(
        run=run, path=str(relative), n_images=n_images or len(image_set.items), title=image_set.title[:300],
        attribute=image_set.attribute[:100], groups=list(image_set.groups), manifest_sha256=image_set.manifest_sha256,
    )


def enqueue_measurement(*, measurement_id: int) -> None:
    from bounty.tasks import measure_submission

    measure_submission.delay(measurement_id)


def _measurement_inputs(measurement: Measurement) -> dict:
    challenge = measurement.submission.challenge
    return dict(model=challenge.model_name, variants=list(challenge.model_variants), seed=measurement.seed,
                compose_options=challenge.compose_options, generalization=challenge.measure_generalization)


def _measurement_chunks(measurement: Measurement, set_dir: Path) -> list[tuple[str, int, int]]:
    """(model, start, stop) per chunk when the set is big enough to split, else []."""
    from grading.measurement import measurement_plan

    plan = measurement_plan(set_dir, **_measurement_inputs(measurement))
    size = settings.MEASURE_CHUNK_SIZE
    if plan["n_units"] * len(plan["models"]) <= size:
        return []
    return [(name, start, min(start + size, plan["n_units"]))
            for name in plan["models"] for start in range(0, plan["n_units"], size)]


def measurement_execute(*, measurement_id: int, chunks_done: bool = False) -> str:
    """Measure an image set on the challenge's target and score it provisionally.

    A big set is first split into chunks run by parallel tasks (a chord); they fill the
    content-keyed observation cache, and this function runs again as the chord's callback
    (`chunks_done`), reading every observation back in the plan's fixed order.
    """
    from celery import chord

    from bounty.tasks import measure_chunk, measure_merge
    from grading.measurement import document_dumps, measure_image_set

    if not Measurement.objects.filter(pk=measurement_id, status__in=("pending", "running")).update(status="running"):
        return "nothing to do"
    measurement = Measurement.objects.select_related("submission__challenge", "image_set").get(pk=measurement_id)
    submission = measurement.submission
    challenge = submission.challenge
    set_dir = settings.VAR_DIR / measurement.image_set.path

    def progress(done: int, total: int) -> None:
        Measurement.objects.filter(pk=measurement_id).update(progress_done=done, progress_total=total)

    try:
        chunks = [] if chunks_done else _measurement_chunks(measurement, set_dir)
        if chunks:
            Measurement.objects.filter(pk=measurement_id).update(
                progress_done=0, progress_total=sum(stop - start for _m, start, stop in chunks))
            chord(measure_chunk.si(measurement_id, name, start, stop) for name, start, stop in chunks)(
                measure_merge.si(measurement_id))
            return f"split into {len(chunks)} chunks"
        document = measure_image_set(
            set_dir, model=challenge.model_name, variants=list(challenge.model_variants),
            ratios=list(challenge.aspect_ratios), seed=measurement.seed, compose_options=challenge.compose_options,
            probe_sha256=submission.probe_sha256, generalization=challenge.measure_generalization,
            workers=1, cache_dir=settings.MEASURE_CACHE_DIR, progress=progress,
            artifacts_dir=measurement_artifacts_dir(measurement_id),
        )
    except Exception as exc:  # noqa: BLE001 - recorded and shown; the platform's fault, not the probe's
        logger.exception("measurement %s failed", measurement_id)
        Measurement.objects.filter(pk=measurement_id).update(status="failed", error=str(exc)[:2000])
        if measurement.rerun_of_id:
            return "failed"
        services.submission_transition(
            submission_id=submission.pk, from_states=(states.MEASURING,), to_state=states.PLATFORM_ERROR,
            reason=f"The measurement failed on the platform's side: {exc}",
        )
        return "failed"
    text = document_dumps(document)
    with transaction.atomic():
        updated = Measurement.objects.filter(pk=measurement_id, status="running").update(
            status="done", document_json=text, model_version=document.get("model_version", ""),
            document_sha256="sha256:" + hashlib.sha256(text.encode()).hexdigest(), finished_at=timezone.now(),
        )
        if not updated:
            return "already stored"
        if measurement.rerun_of_id:
            return "done (re-run)"
        services.submission_transition(
            submission_id=submission.pk, from_states=(states.MEASURING,), to_state=states.MEASURED,
            reason="measured; a provisional score is being computed",
        )
        score_provisional(submission=submission, document=document)
        services.submission_transition(
            submission_id=submission.pk, from_states=(states.MEASURED,), to_state=states.IN_REVIEW,
            reason="measured and provisionally scored; waiting for the judges",
        )
    return "done"


def measurement_chunk(*, measurement_id: int, model: str, start: int, stop: int) -> int:
    """One chunk of a split measurement: observe units [start, stop) on `model` into the cache."""
    from django.db.models import F

    from grading.measurement import measure_chunk

    measurement = Measurement.objects.select_related("submission__challenge", "image_set").get(pk=measurement_id)
    if measurement.status != "running":
        return 0
    inputs = _measurement_inputs(measurement)
    done = measure_chunk(settings.VAR_DIR / measurement.image_set.path, model=model, start=start, stop=stop,
                         ratios=list(measurement.submission.challenge.aspect_ratios) or None, seed=inputs["seed"],
                         compose_options=inputs["compose_options"], cache_dir=settings.MEASURE_CACHE_DIR)
    Measurement.objects.filter(pk=measurement_id).update(progress_done=F("progress_done") + done)
    return done


def measurement_artifacts_dir(measurement_id: int) -> Path:
    """Where a measurement's plots and contact sheet live (served to those who may see it)."""
    return settings.VAR_DIR / "artifacts" / f"measurement-{measurement_id}"


def score_provisional(*, submission: Submission, document: dict) -> Score:
    from grading.rubric import provisional_score
    from grading.rubric.loader import rubric_for_challenge

    value, breakdown = provisional_score(harm_type=submission.harm_type, document=document,
                                         rubric=rubric_for_challenge(submission.challenge))
    Submission.objects.filter(pk=submission.pk).update(provisional_score=value)
    return Score.objects.create(
        submission=submission, kind=Score.PROVISIONAL, value=value, breakdown=breakdown,
        rubric=f"{submission.challenge.rubric_name}@{submission.challenge.rubric_version}",
    )


def reconcile() -> dict:
    """The main recovery path: re-send work the database says is pending but nobody is doing.

    Re-sending is always safe: the tasks compare-and-set before acting, so a task that was in
    the broker after all finds the row moved and leaves.
    """
    from sandbox.runner import reap_stray_sandboxes

    grace = timezone.now() - timedelta(seconds=settings.REAPER_GRACE_S)
    report = {"runs_requeued": 0, "runs_restarted": 0, "measurements_requeued": 0, "sandboxes_reaped": 0}
    for run_id in ProbeRun.objects.filter(status=RUN_QUEUED, queued_at__lt=grace).values_list("pk", flat=True):
        services.enqueue_run(run_id=str(run_id))
        report["runs_requeued"] += 1
    for run in ProbeRun.objects.filter(status=RUN_RUNNING, started_at__lt=grace).only("pk"):
        if not RunLease.held(str(run.pk)):
            services.enqueue_run(run_id=str(run.pk))  # its worker died: the task takes it over
            report["runs_restarted"] += 1
    stuck = Measurement.objects.filter(status__in=("pending", "running"), created_at__lt=grace)
    for measurement_id in stuck.values_list("pk", flat=True):
        Measurement.objects.filter(pk=measurement_id, status="running").update(status="pending")
        enqueue_measurement(measurement_id=measurement_id)
        report["measurements_requeued"] += 1
    max_age = settings.SANDBOX_MAX_WALL_S + settings.REAPER_GRACE_S
    report["sandboxes_reaped"] = len(reap_stray_sandboxes(older_than_s=max_age))
    return report
