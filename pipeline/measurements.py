"""Measurement orchestration: the image set on the challenge's target → metrics document → score.

A measurement in progress holds a lease in its own row (who, until when), renewed while it
works; a delivery that finds a live lease leaves, reconcile re-sends only measurements whose
lease expired, and only the holder may store the document — so a long measurement is computed
once, whatever the broker does. A big set is split into chunk tasks (a chord) that fill the
content-keyed observation cache; while they run, the lease belongs to the chunks, which renew
it. The chord's callback runs `measurement_execute` again (`chunks_done`), takes the lease back
and reads every observation in the plan's fixed order, so the document is byte-identical to an
unsplit one.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid

from celery import chord, current_app
from django.conf import settings
from django.db import transaction

import blobs
from bounty import selectors as bounty_selectors
from bounty import services, states
from grading import services as grading_services
from grading.measurement import document_dumps, measure_chunk, measure_image_set, measurement_plan
from grading.models import Measurement, MeasurementStatus
from grading.selectors import artifacts_key
from grading.speed import speed_record
from pipeline import replication, scheduling
from pipeline.bounds import MEMORY_EXCEEDED, check_plan, memory_capped
from pipeline.faults import CHUNK_TASK, MEASURE_TASK, MERGE_TASK, PLATFORM_FAULTS, unknown_fault_record
from pipeline.leases import RenewedInBackground
from probekit.imageset import ImageSetRejected, validate_image_set
from probekit.models.onnx_model import ModelFault

logger = logging.getLogger(__name__)

MAX_MEASURE_ATTEMPTS = 3
# An exception nobody foresaw is retried for free once per submission (its first delivery); when
# the set's measurement raises again it is the set's doing: `failed`, counted against the quota.
FREE_RETRIES = 1
LEASE_TTL_S = 30
# While chunk tasks are queued or running, the lease lives this long past each chunk's renewal.
SPLIT_LEASE_S = 600
REJECTED_AT_MEASUREMENT = "The image set was rejected when it was measured: {error}"
PLATFORM_FAILED = ("The measurement failed on the platform's side ({error}) after {attempts} attempts. "
                   "This is not your probe's fault and does not count against your quota.")
ATTEMPTS_EXHAUSTED = "the measurement's worker was lost {attempts} times"
UNKNOWN_AGAIN = ("measuring this set raised {error} again after a retry; a set whose measurement fails the same "
                 "way every time is counted as the probe's result (the organizers were alerted and can re-run it)")
UNKNOWN_IN_CHUNK = ("measuring part of this set raised {error}; the set passed every cap before it was split, so "
                    "this counts as the probe's result (the organizers were alerted and can re-run it)")


def enqueue_measurement(*, measurement_id: int, countdown: float = 0) -> None:
    measurement = Measurement.objects.select_related("submission").filter(pk=measurement_id).first()
    queue = scheduling.measurement_queue_name(measurement=measurement) if measurement else None
    current_app.send_task(MEASURE_TASK, args=[measurement_id], countdown=countdown, queue=queue)


def _settings_of(measurement: Measurement) -> dict:
    return bounty_selectors.challenge_measurement_settings(challenge=measurement.submission.challenge)


def _chunk_options(options: dict, seed: int) -> dict:
    """The keywords `measure_chunk` takes, from the challenge's measurement settings."""
    return dict(ratios=options["ratios"], seed=seed, compose_options=options["compose_options"],
                max_images=options["max_images"], max_pixels=options["max_pixels"])



def _chunks(measurement: Measurement, set_dir, options: dict) -> list[tuple[str, int, int]]:
    """(model, start, stop) per chunk when the set is big enough to split, else [] (pipeline.scheduling).

    The plan's size is checked first, before any model runs (the calibration of a model's speed
    included)."""
    check_plan(validate_image_set(set_dir, max_images=options["max_images"], max_pixels=options["max_pixels"],
                                  max_total_bytes=2**40, decode=False, hash_images=False), options)
    plan = measurement_plan(set_dir, seed=measurement.seed, **{k: v for k, v in options.items() if k != "ratios"})
    models, units = plan["models"], plan["n_units"]
    speeds = scheduling.model_speeds(set_dir=set_dir, models=models, units=units,
                                     measure_options=_chunk_options(options, measurement.seed))
    return scheduling.chunk_plan(units=units, models=models, speeds=speeds, slots=settings.WORKER_CONCURRENCY,
                                 max_units=settings.MEASURE_CHUNK_SIZE, target_s=settings.MEASURE_CHUNK_TARGET_S,
                                 split_min_s=settings.MEASURE_SPLIT_MIN_S)


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def measurement_execute(*, measurement_id: int, chunks_done: bool = False) -> str:
    """Measure an image set on the challenge's target and score it provisionally."""
    holder = _holder()
    if chunks_done:
        measurement = grading_services.measurement_claim_merge(measurement_id=measurement_id, holder=holder,
                                                               ttl_s=LEASE_TTL_S)
    else:
        measurement = grading_services.measurement_claim(measurement_id=measurement_id, holder=holder,
                                                         ttl_s=LEASE_TTL_S)
    if measurement is None:
        return "nothing to do (finished, or a live worker holds it)"
    if measurement.attempts > MAX_MEASURE_ATTEMPTS:
        return _fail(measurement, probe_fault=False, error=ATTEMPTS_EXHAUSTED.format(attempts=measurement.attempts - 1))
    if measurement.rerun_of_id and replication.confirmatory_stopped(measurement):
        return _fail(measurement, probe_fault=False, error="stopped: the submission was cancelled or decided")

    def renew() -> bool:
        return grading_services.measurement_renew(measurement_id=measurement_id, holder=holder, ttl_s=LEASE_TTL_S)

    with RenewedInBackground(renew, every_s=LEASE_TTL_S / 3, name=f"measurement {measurement_id}"):
        return _compute(measurement, holder=holder, chunks_done=chunks_done)


def _observations_key(measurement_id: int) -> str:
    """Where a split measurement's chunks leave their observations for the merge (any host's)."""
    return blobs.key_of(blobs.OBSERVATIONS, f"measurement-{measurement_id}")


def _compute(measurement: Measurement, *, holder: str, chunks_done: bool) -> str:
    measurement_id = measurement.pk
    options = _settings_of(measurement)

    def progress(done: int, total: int) -> None:
        grading_services.measurement_progress(measurement_id=measurement_id, done=done, total=total)

    try:
        grading_services.registered_models_fetch(names=[measurement.model_name, *options.get("variants", ())])
        with contextlib.ExitStack() as files:
            set_dir = files.enter_context(blobs.fetched_tree(measurement.image_set.path, label="imageset"))
            chunks = [] if chunks_done else _chunks(measurement, set_dir, options)
            if chunks:
                progress(0, sum(stop - start for _m, start, stop in chunks))
                if not grading_services.measurement_split(measurement_id=measurement_id, holder=holder,
                                                          horizon_s=SPLIT_LEASE_S):
                    return "lease lost before the split"
                queue = scheduling.chunk_queue_name(measurement=measurement, chunks=chunks)
                chord(current_app.signature(CHUNK_TASK, args=(measurement_id, name, start, stop), immutable=True,
                                            queue=queue)
                      for name, start, stop in chunks)(current_app.signature(MERGE_TASK, args=(measurement_id,),
                                                                             immutable=True))
                return f"split into {len(chunks)} chunks"
            # The merge reads the chunks' observations; an unsplit measurement this host's own cache.
            cache_dir = (files.enter_context(blobs.fetched_tree(_observations_key(measurement_id),
                                                                 label="observations"))
                         if chunks_done else settings.MEASURE_CACHE_DIR)
            artifacts = files.enter_context(blobs.writing_tree(artifacts_key(measurement_id=measurement_id),
                                                               label="artifacts"))
            with memory_capped():
                document = measure_image_set(
                    set_dir, seed=measurement.seed, probe_sha256=measurement.submission.probe_sha256, workers=1,
                    cache_dir=cache_dir, progress=progress, artifacts_dir=artifacts, **options,
                )
    except PLATFORM_FAULTS:
        with contextlib.suppress(*PLATFORM_FAULTS):  # when the database is away the lease just expires
            grading_services.measurement_release(measurement_id=measurement_id, holder=holder)
        raise  # the task retries with backoff and claims it again
    except Exception as exc:  # noqa: BLE001 - blamed by cause (_blame): the set's, or a bounded unknown fault
        return _blame(measurement, exc, holder=holder)
    stored = _store(measurement, document, holder=holder)
    if chunks_done:
        with contextlib.suppress(blobs.StorageUnavailable):  # only space is lost when this fails
            blobs.delete_tree(_observations_key(measurement_id))
    return stored


def _blame(measurement: Measurement, exc: Exception, *, holder: str) -> str:
    """End a measurement that raised: the set's content is the probe's fault; anything else is
    logged, counted for the organizers and retried once for free, then counted as the probe's."""
    blamed = set_fault(exc)
    if blamed is not None:
        logger.info("measurement %s: the set's fault: %s", measurement.pk, blamed)
        return _fail(measurement, probe_fault=True, error=blamed)
    logger.exception("measurement %s raised an unforeseen exception (attempt %s)", measurement.pk,
                     measurement.attempts)
    unknown_fault_record()
    if measurement.attempts <= FREE_RETRIES and grading_services.measurement_release(
            measurement_id=measurement.pk, holder=holder):
        enqueue_measurement(measurement_id=measurement.pk, countdown=5 * measurement.attempts)
        return "retrying"
    return _fail(measurement, probe_fault=True,
                 error=UNKNOWN_AGAIN.format(error=f"{type(exc).__name__}: {str(exc)[:300]}"))


def set_fault(exc: BaseException) -> str | None:
    """The reason when `exc` was caused by the set's content (a broken rule, memory past the cap), else None."""
    if isinstance(exc, ImageSetRejected):
        return str(exc)
    if isinstance(exc, MemoryError):
        return MEMORY_EXCEEDED.format(cap_mb=settings.MEASURE_MEMORY_MB)
    if isinstance(exc, ModelFault):  # the organizer's model on this set: named, never a free retry
        return str(exc)
    return None


def _store(measurement: Measurement, document: dict, *, holder: str) -> str:
    text = document_dumps(document)
    submission = measurement.submission
    with transaction.atomic():
        if not grading_services.measurement_store(measurement_id=measurement.pk, holder=holder, text=text,
                                                  model_version=document.get("model_version", "")):
            return "not stored: the lease was lost (another delivery holds it)"
        if measurement.rerun_of_id:
            if replication.is_confirmatory(measurement):
                return f"done (replication: {replication.replication_measured(measurement=measurement, text=text)})"
            return "done (re-run)"
        moved = services.submission_transition(
            submission_id=submission.pk, from_states=(states.MEASURING,), to_state=states.MEASURED,
            reason="measured; a provisional score is being computed",
        )
        if not moved:
            return "done (the submission had moved on)"
        score = grading_services.score_provisional_create(submission=submission, document=json.loads(text))
        services.submission_transition(
            submission_id=submission.pk, from_states=(states.MEASURED,), to_state=states.IN_REVIEW,
            reason="measured and provisionally scored; waiting for the judges", provisional_score=score.value,
        )
        replication.replication_begin(submission=submission, measurement=measurement, document=json.loads(text))
    return MeasurementStatus.DONE


def _fail(measurement: Measurement, *, probe_fault: bool, error: str) -> str:
    """End the measurement: the probe's fault → failed with its reason, else a final platform_error."""
    with transaction.atomic():
        grading_services.measurement_fail(measurement_id=measurement.pk, error=error)
        if measurement.rerun_of_id:
            replication.replication_measurement_failed(measurement=measurement, error=error)
            return MeasurementStatus.FAILED
        if probe_fault:
            services.submission_transition(
                submission_id=measurement.submission_id, from_states=(states.MEASURING,), to_state=states.FAILED,
                reason=REJECTED_AT_MEASUREMENT.format(error=error))
        else:
            services.submission_transition(
                submission_id=measurement.submission_id, from_states=(states.MEASURING,),
                to_state=states.PLATFORM_ERROR,
                reason=PLATFORM_FAILED.format(error=error, attempts=min(measurement.attempts, MAX_MEASURE_ATTEMPTS)))
    return MeasurementStatus.FAILED


def capped_measure_chunk(*args, **kwargs) -> int:
    with memory_capped():
        return measure_chunk(*args, **kwargs)


def measurement_chunk(*, measurement_id: int, model: str, start: int, stop: int) -> int:
    """One chunk of a split measurement: observe units [start, stop) on `model` into the cache.

    A chunk run twice (a redelivery) writes the same cache files: the merge reads them once."""
    measurement = Measurement.objects.select_related("submission__challenge", "image_set").get(pk=measurement_id)
    if measurement.status != MeasurementStatus.RUNNING or measurement.lease_holder != grading_services.SPLIT_HOLDER:
        return 0

    def renew() -> bool:
        return grading_services.measurement_renew(measurement_id=measurement_id, holder=grading_services.SPLIT_HOLDER,
                                                  ttl_s=SPLIT_LEASE_S)

    options = _settings_of(measurement)
    with RenewedInBackground(renew, every_s=LEASE_TTL_S / 3, name=f"measurement {measurement_id} chunk {start}"):
        try:
            grading_services.registered_models_fetch(names=[model])
            with blobs.fetched_tree(measurement.image_set.path, label="imageset") as set_dir, \
                    blobs.writing_tree(_observations_key(measurement_id), label="observations") as cache_dir:
                started = time.monotonic()
                done = capped_measure_chunk(set_dir, model=model, start=start, stop=stop, cache_dir=cache_dir,
                                            **_chunk_options(options, measurement.seed))
                speed_record(model=model, observations=done, seconds=time.monotonic() - started)
            logger.info("measurement %s: chunk %s[%s:%s] observed on %s", measurement_id, model, start, stop,
                        socket.gethostname())
        except PLATFORM_FAULTS:
            raise
        except Exception as exc:  # noqa: BLE001 - ends the measurement; the chord's callback then finds it failed
            blamed = set_fault(exc)
            if blamed is None:
                logger.exception("measurement %s: chunk %s[%s:%s] failed", measurement_id, model, start, stop)
                unknown_fault_record()
            _fail(measurement, probe_fault=True,
                  error=blamed or UNKNOWN_IN_CHUNK.format(error=f"{type(exc).__name__}: {str(exc)[:300]}"))
            return 0
    grading_services.measurement_progress(measurement_id=measurement_id, add=done)
    return done
