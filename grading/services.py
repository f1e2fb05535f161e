"""Writes of grading's own rows: every Measurement and Score is created and moved here.

The pipeline calls these with rows it already holds; each status move is a compare-and-set
(`UPDATE … WHERE status IN (…)`), so a redelivered task finds the row moved and does nothing.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from django.db.models import F, Q
from django.utils import timezone

import blobs
from grading.models import (
    MEASUREMENT_IN_FLIGHT,
    Measurement,
    MeasurementStatus,
    RegisteredModel,
    Replication,
    ReplicationStatus,
    Score,
)
from grading.rubric import final_score, provisional_score, rubric_for_challenge
from probekit.imageset import file_sha256
from probekit.models import REGISTRY
from probekit.models.registered import MODEL_FILE, models_dir, register_model, registered_file
from probekit.replication import claimed_tests


def _registered_model_store(name: str) -> None:
    """Put a registered model's folder in the object storage, where other hosts' workers fetch it.

    On the embedded filesystem storage there is one host: the registry folder is the storage."""
    if blobs.is_local():
        return
    blobs.put_tree(blobs.key_of(blobs.MODELS, name), models_dir() / name)


def registered_models_fetch(*, names) -> None:
    """Make sure this host holds the registered models among `names` (`name` or `name@variant`).

    A model registered on another host is fetched from the object storage into a staging folder
    and renamed into PROBEKIT_MODELS_DIR whole, after its bytes are checked against the sha256
    recorded at registration. Built-in names are left alone. Raises blobs.StorageUnavailable
    (a passing fault of the platform) when the storage cannot give the model back intact."""
    wanted = {name.partition("@")[0] for name in names if name}
    if blobs.is_local() or not wanted:
        return
    for row in RegisteredModel.objects.filter(name__in=wanted):
        path = registered_file(row.name)
        if path is not None and _holds(path, row.sha256):
            continue
        folder = models_dir()
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".fetch-"))
        try:
            blobs.fetch_tree(blobs.key_of(blobs.MODELS, row.name), staging)
            if not _holds(staging / MODEL_FILE, row.sha256):
                raise blobs.StorageUnavailable(f"object storage: the registered model {row.name} is missing "
                                               f"or does not match its sha256 {row.sha256}")
            shutil.rmtree(folder / row.name, ignore_errors=True)
            os.rename(staging, folder / row.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


# Local model files this process has hashed, by (path, size, mtime): every run and chunk asks again.
_VERIFIED: dict[tuple[str, int, int], str] = {}


def _holds(path: Path, sha256: str) -> bool:
    """Whether the file at `path` has the bytes `sha256` names ("sha256:<hex>"), hashed once per version."""
    try:
        stat = path.stat()
    except OSError:
        return False
    version = (str(path), stat.st_size, stat.st_mtime_ns)
    if version not in _VERIFIED:
        _VERIFIED[version] = file_sha256(path)
    return _VERIFIED[version] == sha256


def registered_model_create(*, model_path, name: str, card_path, actor=None) -> dict:
    """Check and register an organizer's ONNX model (probekit's checks), and record who did.

    Raises probekit's `ModelRejected` (one line) when the model or card is refused; nothing is stored then.
    """
    report = register_model(model_path, name=name, card_path=card_path, builtins=REGISTRY)
    _registered_model_store(report["name"])
    RegisteredModel.objects.get_or_create(name=report["name"], defaults={
        "version": report["version"], "sha256": report["sha256"], "registered_by": actor})
    return report


def registered_model_upload(*, model_file, name: str, card_text: str) -> dict:
    """The checks and files of `registered_model_create` for an upload; the admin then saves the record row."""
    with tempfile.TemporaryDirectory(prefix="cropbias-model-") as tmp:
        model_path, card_path = Path(tmp) / "model.onnx", Path(tmp) / "card.json"
        with open(model_path, "wb") as out:
            for chunk in model_file.chunks():
                out.write(chunk)
        card_path.write_text(card_text, encoding="utf-8")
        report = register_model(model_path, name=name, card_path=card_path, builtins=REGISTRY)
    _registered_model_store(report["name"])
    return report


def measurement_create(*, submission, image_set, rerun_of_id: int | None = None) -> Measurement:
    """A pending measurement of `image_set` on the submission's challenge target."""
    return Measurement.objects.create(
        submission=submission, image_set=image_set, model_name=submission.challenge.model_name,
        probe_sha256=submission.probe_sha256, manifest_sha256=image_set.manifest_sha256,
        rerun_of_id=rerun_of_id,  # progress_total stays 0 until the worker counts its runs (units × models)
    )


# The holder name of a split measurement while its chunk tasks run (they renew it together).
SPLIT_HOLDER = "chunks"


def _until(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def _lease_expired(now) -> Q:
    """Running, but nobody renews its lease any more (or it never had one)."""
    return Q(status=MeasurementStatus.RUNNING) & (Q(lease_until__lt=now) | Q(lease_until=None))


def measurement_claim(*, measurement_id: int, holder: str, ttl_s: float) -> Measurement | None:
    """Take the measurement's lease and count an attempt: pending, or running with an expired lease.

    None when it finished or a live holder has it (a redelivery then has nothing to do)."""
    now = timezone.now()
    free = Q(status=MeasurementStatus.PENDING) | _lease_expired(now)
    if not Measurement.objects.filter(free, pk=measurement_id).update(
            status=MeasurementStatus.RUNNING, attempts=F("attempts") + 1, lease_holder=holder, lease_until=_until(ttl_s)):
        return None
    return Measurement.objects.select_related("submission__challenge", "image_set").get(pk=measurement_id)


def measurement_claim_merge(*, measurement_id: int, holder: str, ttl_s: float) -> Measurement | None:
    """The chord's callback takes the lease over from the chunks (not a new attempt)."""
    if not Measurement.objects.filter(pk=measurement_id, status=MeasurementStatus.RUNNING, lease_holder=SPLIT_HOLDER).update(
            lease_holder=holder, lease_until=_until(ttl_s)):
        return None
    return Measurement.objects.select_related("submission__challenge", "image_set").get(pk=measurement_id)


def measurement_renew(*, measurement_id: int, holder: str, ttl_s: float) -> bool:
    """Extend the lease; False when it was lost (expired and taken over)."""
    return bool(Measurement.objects.filter(pk=measurement_id, status=MeasurementStatus.RUNNING, lease_holder=holder)
                .update(lease_until=_until(ttl_s)))


def measurement_split(*, measurement_id: int, holder: str, horizon_s: float) -> bool:
    """Hand the lease to the chunk tasks, which renew it as they run."""
    return bool(Measurement.objects.filter(pk=measurement_id, status=MeasurementStatus.RUNNING, lease_holder=holder)
                .update(lease_holder=SPLIT_HOLDER, lease_until=_until(horizon_s)))


def measurement_release(*, measurement_id: int, holder: str) -> bool:
    """Give the lease back at once (for a retry with backoff): the next delivery claims it."""
    return bool(Measurement.objects.filter(pk=measurement_id, status=MeasurementStatus.RUNNING, lease_holder=holder)
                .update(status=MeasurementStatus.PENDING, lease_holder="", lease_until=None))


def measurement_progress(*, measurement_id: int, done: int | None = None, total: int | None = None,
                         add: int = 0) -> None:
    fields: dict = {}
    if done is not None:
        fields["progress_done"] = done
    if total is not None:
        fields["progress_total"] = total
    if add:
        fields["progress_done"] = F("progress_done") + add
    if fields:
        Measurement.objects.filter(pk=measurement_id).update(**fields)


def measurement_fail(*, measurement_id: int, error: str) -> bool:
    return bool(Measurement.objects.filter(pk=measurement_id, status__in=MEASUREMENT_IN_FLIGHT).update(
        status=MeasurementStatus.FAILED, error=error[:2000], finished_at=timezone.now(), lease_holder="", lease_until=None))


def measurement_store(*, measurement_id: int, holder: str, text: str, model_version: str) -> bool:
    """running → done with the document stored byte for byte, by the lease's holder only."""
    return bool(Measurement.objects.filter(pk=measurement_id, status=MeasurementStatus.RUNNING, lease_holder=holder).update(
        status=MeasurementStatus.DONE, document_json=text, model_version=model_version,
        document_sha256="sha256:" + hashlib.sha256(text.encode()).hexdigest(), finished_at=timezone.now(),
        lease_until=None,
    ))


def measurements_to_resend(*, older_than) -> list[int]:
    """Measurements nobody holds: pending past the grace, or running with an expired lease."""
    now = timezone.now()
    return list(Measurement.objects.filter(
        Q(status=MeasurementStatus.PENDING, created_at__lt=older_than)
        | _lease_expired(now)
    ).values_list("pk", flat=True))


def score_provisional_create(*, submission, document: dict) -> Score:
    """The rubric engine's score of the measurement alone (before any judge)."""
    rubric = rubric_for_challenge(submission.challenge)
    value, breakdown = provisional_score(harm_type=submission.harm_type, document=document, rubric=rubric)
    return Score.objects.create(submission=submission, kind=Score.PROVISIONAL, value=value, breakdown=breakdown,
                                rubric=rubric.key)


def score_final_create(*, submission) -> Score | None:
    """The final score from the judges' reviews (the provisional score when nobody rated)."""
    rubric = rubric_for_challenge(submission.challenge)
    reviews = submission.reviews.all()
    value = final_score(reviews=reviews, provisional=submission.provisional_score, rubric=rubric)
    if value is None:
        return None
    return Score.objects.create(
        submission=submission, kind=Score.FINAL, value=value, rubric=rubric.key,
        breakdown={"reviews": list(reviews.filter(conflict_of_interest=False).values("judge_id", "score"))},
    )


def replication_start(*, submission, measurement, document: dict, pending: bool = True) -> Replication | None:
    """The submission's replication once its first measurement is stored: `pending` with a fresh
    secret seed when a test was significant, else `not_applicable` (final, nothing to run); None
    when replication is off (`pending=False`) and something would be replicated. A second call (a
    redelivery) returns the row the first made."""
    claimed = bool(claimed_tests(document))
    if claimed and not pending:
        return None
    replication, _created = Replication.objects.get_or_create(submission=submission, defaults=dict(
        measurement=measurement,
        status=ReplicationStatus.PENDING if claimed else ReplicationStatus.NOT_APPLICABLE,
        seed=secrets.randbits(62) if claimed else None,
        finished_at=None if claimed else timezone.now(),
        reason="" if claimed else "nothing was significant on the first draw",
        robustness={"status": "pending", "tests": {}} if claimed else {"status": "not_applicable", "tests": {}},
    ))
    return replication


def replication_confirmatory_set(*, replication_id: int, measurement: Measurement) -> bool:
    return bool(Replication.objects.filter(pk=replication_id, status=ReplicationStatus.PENDING)
                .update(confirmatory=measurement))


def replication_finish(*, replication_id: int, status: str, reason: str = "", tests=(),
                       document_sha256: str = "") -> bool:
    """pending → a final status (compare-and-set: a second delivery changes nothing)."""
    return bool(Replication.objects.filter(pk=replication_id, status=ReplicationStatus.PENDING).update(
        status=status, reason=reason[:2000], tests=list(tests), document_sha256=document_sha256,
        finished_at=timezone.now()))


def robustness_store(*, replication_id: int, robustness: dict) -> bool:
    """pending → the robustness result (compare-and-set on its status)."""
    return bool(Replication.objects.filter(pk=replication_id, robustness__status="pending")
                .update(robustness=robustness))
