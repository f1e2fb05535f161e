"""Model reports: every accepted or published finding of a challenge re-measured on a candidate model.

A report is a `grading.models.ModelReport` row: created pending (by the `model_report` command or
the organizers' page), computed by `report_execute` (in the command's process, or as a Celery task
on the bulk queue, so participants' runs go first), then written whole — the report's JSON and
`done` in one update — or `failed` with one line saying why. Nothing half-written: a candidate
that does not load, or whose maps are not maps (NaN, wrong shape), fails the report before any
finding is measured. The statistics are probekit.compare's (docs/statistics.md, "The model report").
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import uuid
from datetime import timedelta

from celery import chord, current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

import blobs
from bounty import selectors as bounty_selectors
from bounty import states
from bounty.models import Challenge, Submission
from grading import selectors as grading_selectors
from grading import services as grading_services
from grading.measurement import document_dumps, measure_chunk, measurement_plan
from grading.models import REPORT_DONE, REPORT_FAILED, REPORT_PENDING, REPORT_RUNNING, ModelReport
from grading.reports import report_content, reports_of
from pipeline.faults import PLATFORM_FAULTS
from pipeline.leases import RenewedInBackground
from probekit import get_model
from probekit.compare import CandidateBroken, check_candidate, compare_on_candidate, first_images
from probekit.measurement._curve import compression_order
from probekit.models import REGISTRY

logger = logging.getLogger(__name__)

REPORT_TASK = "pipeline.tasks.model_report"
REPORT_CHUNK_TASK = "pipeline.tasks.model_report_chunk"
REPORT_MERGE_TASK = "pipeline.tasks.model_report_merge"
SPLIT_HOLDER = "chunks"  # a split report's lease belongs to its chunks until the merge
SPLIT_LEASE_S = 600  # while chunks run, the lease lives this long past each chunk's start
FINDING_STATES = (states.ACCEPTED, states.PUBLISHED)
# What a compression audit runs on an ONNX model (u2netp or a registered one), before ordering by compression.
ONNX_AUDIT_VARIANTS = ("fp16", "int8", "prune10", "prune25", "prune50", "prune75", "prune90", "prune95")
LEASE_TTL_S = 120  # a report not renewed for this long is taken over by the next delivery
PROGRESS_STEPS = 1000  # per finding: progress is finding-wise, each split by its units
FAILED_ON = "candidate {candidate!r} failed on finding {submission}: {error}"


class ReportFailed(Exception):
    """The report cannot be made; the message is one line."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def report_findings(*, challenge: Challenge) -> list[Submission]:
    """The findings a report re-measures: the challenge's accepted and published submissions, oldest first."""
    return list(Submission.objects.filter(challenge=challenge, state__in=FINDING_STATES).order_by("pk"))


def report_create(*, challenge: Challenge, candidate: str, user=None, audit: str = "") -> ModelReport:
    """A pending report of `candidate` on the challenge (checked by name only; it loads when it runs)."""
    candidate = candidate.strip()
    if not candidate:
        raise ReportFailed("name a candidate model, e.g. u2netp@int8")
    return ModelReport.objects.create(challenge=challenge, model_name=challenge.model_name, candidate=candidate,
                                      requested_by=user if user is not None and user.is_authenticated else None,
                                      audit=audit)


def reports_to_resend(*, older_than) -> list[int]:
    """Reports nobody holds: pending since before `older_than` (their message was lost), or running
    with an expired lease (their worker, or a split report's chunks, were lost)."""
    stale = Q(status=REPORT_PENDING, created_at__lt=older_than) | Q(status=REPORT_RUNNING,
                                                                     lease_until__lt=timezone.now())
    return list(ModelReport.objects.filter(stale).values_list("pk", flat=True))


def report_enqueue(*, report: ModelReport) -> None:
    """Run the report in a worker, on the bulk queue (after every participant's run that could start)."""
    transaction.on_commit(lambda: current_app.send_task(REPORT_TASK, args=[report.pk],
                                                        queue=settings.CELERY_BULK_QUEUE))


def _candidate_checked(*, challenge: Challenge, candidate: str) -> str:
    """The candidate's version once it loads and gives a valid map of the check image (else ReportFailed)."""
    grading_services.registered_models_fetch(names=[challenge.model_name, candidate])
    try:
        check_candidate(candidate)
        return get_model(candidate).version
    except CandidateBroken as exc:
        raise ReportFailed(str(exc)) from None


def report_compute(*, challenge: Challenge, candidate: str, progress=None, cache_dir=None,
                   version: str | None = None) -> tuple[dict, list[str], str]:
    """(the report, its warnings, the candidate's version); raises ReportFailed in one line.

    `cache_dir`: where observations are read first (a split report's chunks left them there);
    default the host's measurement cache."""
    options = bounty_selectors.challenge_measurement_settings(challenge=challenge)
    if version is None:  # else the caller checked it
        version = _candidate_checked(challenge=challenge, candidate=candidate)
    findings = report_findings(challenge=challenge)
    rows, warnings, images_checked = [], [], False
    for index, submission in enumerate(findings):
        measurement = grading_selectors.measurement_of_record(submission=submission)
        document = grading_selectors.document_of(measurement)
        if document is None:
            warnings.append(f"finding {submission.pk} has no metrics document; left out")
            continue

        def step(done: int, total: int, index=index) -> None:
            if progress:
                progress(index * PROGRESS_STEPS + (done * PROGRESS_STEPS // max(total, 1)),
                         len(findings) * PROGRESS_STEPS)

        with blobs.fetched_tree(measurement.image_set.path, label="imageset") as set_dir:
            if not images_checked:  # the candidate on real images too, before anything is measured
                try:
                    check_candidate(candidate, first_images(set_dir))
                except CandidateBroken as exc:
                    raise ReportFailed(str(exc)) from None
                images_checked = True
            try:
                result = compare_on_candidate(
                    set_dir, model=document.get("model", challenge.model_name), candidate=candidate,
                    document=document, seed=measurement.seed, ratios=options["ratios"],
                    compose_options=options["compose_options"],
                    cache_dir=cache_dir if cache_dir is not None else settings.MEASURE_CACHE_DIR,
                    progress=step, max_images=options["max_images"], max_pixels=options["max_pixels"])
            except PLATFORM_FAULTS:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever the candidate raises on this set ends the report
                raise ReportFailed(FAILED_ON.format(candidate=candidate, submission=submission.pk,
                                                    error=_one_line(exc))) from None
        if not result["reproduced"]:
            warnings.append(f"finding {submission.pk}: the challenge's model no longer gives the published "
                            "estimates on its images (the before values are the published ones)")
        rows += [{"submission": submission.pk, **row} for row in result["rows"]]
    report = {"challenge": challenge.slug, "model": challenge.model_name, "candidate": candidate, "findings": rows}
    return json.loads(document_dumps(report)), warnings, version


def _claim(report_id: int, holder: str, *, from_split: bool = False) -> bool:
    """Take a pending report, or a running one whose holder stopped renewing its lease (a lost worker);
    `from_split`: the merge takes a split report back from its chunks."""
    now = timezone.now()
    free = Q(status=REPORT_PENDING) | Q(status=REPORT_RUNNING, lease_until__lt=now)
    if from_split:
        free = Q(status=REPORT_RUNNING, lease_holder=SPLIT_HOLDER)
    return bool(ModelReport.objects.filter(free, pk=report_id).update(
        status=REPORT_RUNNING, lease_holder=holder, lease_until=now + timedelta(seconds=LEASE_TTL_S)))


def _renew(report_id: int, holder: str) -> bool:
    return bool(ModelReport.objects.filter(pk=report_id, status=REPORT_RUNNING, lease_holder=holder).update(
        lease_until=timezone.now() + timedelta(seconds=LEASE_TTL_S)))


def report_execute(*, report_id: int, chunks_done: bool = False, split: bool = True) -> str:
    """Compute a pending report and store it whole, or store why it failed.

    A report another worker holds is looked at again once its lease could have expired, so a
    report whose worker was lost is taken over instead of staying `running`. A report over
    MEASURE_CHUNK_SIZE units (both models, every finding) is split like a measurement: chunk
    tasks observe ranges of units into shared storage, then this runs again (`chunks_done`)
    and computes the report from what they observed. `split=False` computes it here, whole (the
    command's own process, with no worker needed)."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if not _claim(report_id, holder, from_split=chunks_done):
        if not chunks_done and ModelReport.objects.filter(pk=report_id, status=REPORT_RUNNING).exists():
            current_app.send_task(REPORT_TASK, args=[report_id], countdown=LEASE_TTL_S,
                                  queue=settings.CELERY_BULK_QUEUE)
            return "held by another worker; looked at again later"
        return "nothing to do (finished)"
    report = ModelReport.objects.select_related("challenge").get(pk=report_id)

    def progress(done: int, total: int) -> None:
        ModelReport.objects.filter(pk=report_id, lease_holder=holder).update(progress_done=done,
                                                                             progress_total=total)

    try:
        with RenewedInBackground(lambda: _renew(report_id, holder), every_s=LEASE_TTL_S / 4,
                                 name=f"model report {report_id}"), contextlib.ExitStack() as files:
            version = None
            if chunks_done:
                cache_dir = files.enter_context(blobs.fetched_tree(_observations_key(report_id), label="observations"))
            else:
                version = _candidate_checked(challenge=report.challenge, candidate=report.candidate)  # before a split
                chunks = report_chunks(challenge=report.challenge, candidate=report.candidate) if split else []
                if chunks:
                    return _split(report, holder=holder, chunks=chunks)
                cache_dir = None
            content, warnings, version = report_compute(challenge=report.challenge, candidate=report.candidate,
                                                        progress=progress, cache_dir=cache_dir, version=version)
    except PLATFORM_FAULTS:
        ModelReport.objects.filter(pk=report_id, lease_holder=holder, status=REPORT_RUNNING).update(
            status=REPORT_PENDING, lease_holder="", lease_until=None)
        raise  # the task retries with backoff
    except ReportFailed as exc:
        return _finish(report_id, holder, status=REPORT_FAILED, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - an unforeseen fault: the report fails with its reason
        logger.exception("model report %s failed", report_id)
        return _finish(report_id, holder, status=REPORT_FAILED, error=f"{type(exc).__name__}: {_one_line(exc)}")
    outcome = _finish(report_id, holder, status=REPORT_DONE, report_json=document_dumps(content), warnings=warnings,
                      candidate_version=version)
    if chunks_done:
        with contextlib.suppress(blobs.StorageUnavailable):  # only space is lost when this fails
            blobs.delete_tree(_observations_key(report_id))
    return outcome


# --- a big report, split into chunks ---------------------------------------------------------------


def _observations_key(report_id: int) -> str:
    """Where a split report's chunks leave their observations for the merge (any host's)."""
    return blobs.key_of(blobs.OBSERVATIONS, f"model-report-{report_id}")


def report_chunks(*, challenge: Challenge, candidate: str) -> list[tuple[int, str, int, int]]:
    """(submission, model, start, stop) per chunk when the report's units exceed MEASURE_CHUNK_SIZE, else []."""
    size, work = settings.MEASURE_CHUNK_SIZE, []
    for submission in report_findings(challenge=challenge):
        measurement = grading_selectors.measurement_of_record(submission=submission)
        document = grading_selectors.document_of(measurement)
        if document is None:
            continue
        options = bounty_selectors.challenge_measurement_settings(challenge=challenge)
        with blobs.fetched_tree(measurement.image_set.path, label="imageset") as set_dir:
            units = measurement_plan(set_dir, model=document.get("model", challenge.model_name), seed=measurement.seed,
                                     compose_options=options["compose_options"], max_images=options["max_images"],
                                     max_pixels=options["max_pixels"])["n_units"]
        for model in (document.get("model", challenge.model_name), candidate):
            work += [(submission.pk, model, start, min(start + size, units)) for start in range(0, units, size)]
    if sum(stop - start for _s, _m, start, stop in work) <= size:
        return []
    return work


def _split(report: ModelReport, *, holder: str, chunks) -> str:
    total = sum(stop - start for _s, _m, start, stop in chunks)
    split = ModelReport.objects.filter(pk=report.pk, lease_holder=holder, status=REPORT_RUNNING).update(
        lease_holder=SPLIT_HOLDER, lease_until=timezone.now() + timedelta(seconds=SPLIT_LEASE_S),
        progress_done=0, progress_total=total)
    if not split:
        return "lease lost before the split"
    try:
        chord(current_app.signature(REPORT_CHUNK_TASK, args=(report.pk, submission_id, model, start, stop),
                                    immutable=True, queue=settings.CELERY_BULK_QUEUE)
              for submission_id, model, start, stop in chunks)(
            current_app.signature(REPORT_MERGE_TASK, args=(report.pk,), immutable=True,
                                  queue=settings.CELERY_BULK_QUEUE))
    except BaseException:  # not sent: the lease comes back to this worker, whose handler decides
        ModelReport.objects.filter(pk=report.pk, lease_holder=SPLIT_HOLDER).update(lease_holder=holder)
        raise
    return f"split into {len(chunks)} chunks"


def report_chunk(*, report_id: int, submission_id: int, model: str, start: int, stop: int) -> int:
    """One chunk of a split report: observe units [start, stop) of one finding's set on `model`."""
    report = ModelReport.objects.select_related("challenge").get(pk=report_id)
    if report.status != REPORT_RUNNING or report.lease_holder != SPLIT_HOLDER:
        return 0
    ModelReport.objects.filter(pk=report_id, lease_holder=SPLIT_HOLDER).update(
        lease_until=timezone.now() + timedelta(seconds=SPLIT_LEASE_S))
    submission = Submission.objects.get(pk=submission_id)
    measurement = grading_selectors.measurement_of_record(submission=submission)
    options = bounty_selectors.challenge_measurement_settings(challenge=report.challenge)
    try:
        grading_services.registered_models_fetch(names=[model])
        with blobs.fetched_tree(measurement.image_set.path, label="imageset") as set_dir, \
                blobs.writing_tree(_observations_key(report_id), label="observations") as cache_dir:
            done = measure_chunk(set_dir, model=model, start=start, stop=stop, ratios=options["ratios"],
                                 seed=measurement.seed, compose_options=options["compose_options"],
                                 cache_dir=cache_dir, max_images=options["max_images"],
                                 max_pixels=options["max_pixels"])
    except PLATFORM_FAULTS:
        raise
    except Exception as exc:  # noqa: BLE001 - ends the report; the chord's callback then finds it failed
        logger.exception("model report %s: chunk %s[%s:%s] failed", report_id, model, start, stop)
        _finish(report_id, SPLIT_HOLDER, status=REPORT_FAILED,
                error=FAILED_ON.format(candidate=model, submission=submission_id, error=_one_line(exc)))
        return 0
    ModelReport.objects.filter(pk=report_id).update(progress_done=F("progress_done") + done)
    return done


def _finish(report_id: int, holder: str, **fields) -> str:
    """Store the outcome in one update, only while this worker holds the report."""
    stored = ModelReport.objects.filter(pk=report_id, lease_holder=holder, status=REPORT_RUNNING).update(
        finished_at=timezone.now(), lease_until=None, **fields)
    return fields["status"] if stored else "not stored: another worker took the report over"


# --- the compression audit ------------------------------------------------------------------------


def audit_variants(*, model: str) -> list[str]:
    """The compression variants of `model`, least to most compressed (those it cannot make left out)."""
    base = model.partition("@")[0]
    names = ([f"{base}@{v}" for v in REGISTRY[base][1]] if base in REGISTRY and base != "u2netp"
             else [f"{base}@{v}" for v in ONNX_AUDIT_VARIANTS])
    compression = {}
    for name in names:
        try:
            compression[name] = getattr(get_model(name), "compression", None)
        except Exception:  # noqa: BLE001 - a variant this model cannot make is not audited
            continue
    return compression_order(list(compression), compression)


def audit_create(*, challenge: Challenge, user=None) -> tuple[str, list[ModelReport]]:
    """One report per compression variant of the challenge's model, all under one audit id, enqueued."""
    audit = uuid.uuid4().hex[:12]
    reports = [report_create(challenge=challenge, candidate=name, user=user, audit=audit)
               for name in audit_variants(model=challenge.model_name)]
    for report in reports:
        report_enqueue(report=report)
    return audit, reports


def audit_curves(*, challenge: Challenge) -> dict:
    """The latest audit: per (finding, test), the estimate and interval at each compression level.

    `{"audit", "reports", "curves": [{"submission", "test", "points": [{"model", "estimate", "ci",
    "verdict"}...], "amplified": bool}]}`; a finding is amplified when some variant's change in
    |disparity| has its whole interval above 0 (verdict worse).
    """
    last = reports_of(challenge=challenge).exclude(audit="").first()
    if last is None:
        return {"audit": None, "reports": [], "curves": []}
    # created in order of compression (audit_create)
    reports = list(reports_of(challenge=challenge).filter(audit=last.audit).order_by("pk"))
    curves: dict[tuple, dict] = {}
    for report in reports:
        content = report_content(report)
        for row in (content or {}).get("findings", []):
            key = (row["submission"], row["test"])
            curve = curves.setdefault(key, {"submission": row["submission"], "test": row["test"],
                                            "points": [{"model": challenge.model_name, **row["before"],
                                                        "verdict": None}], "amplified": False})
            curve["points"].append({"model": report.candidate, **row["after"], "verdict": row["verdict"]})
            curve["amplified"] |= row["verdict"] == "worse"
    return {"audit": last.audit, "reports": reports, "curves": list(curves.values())}
