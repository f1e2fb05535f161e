"""Writes of grading's own rows: every Measurement and Score is created and moved here.

The pipeline calls these with rows it already holds; each status move is a compare-and-set
(`UPDATE … WHERE status IN (…)`), so a redelivered task finds the row moved and does nothing.
"""
from __future__ import annotations

import hashlib

from django.db.models import F
from django.utils import timezone

from grading.models import (
    MEASUREMENT_DONE,
    MEASUREMENT_FAILED,
    MEASUREMENT_IN_FLIGHT,
    MEASUREMENT_PENDING,
    MEASUREMENT_RUNNING,
    Measurement,
    Score,
)
from grading.rubric import final_score, provisional_score, rubric_for_challenge


def measurement_create(*, submission, image_set, rerun_of_id: int | None = None) -> Measurement:
    """A pending measurement of `image_set` on the submission's challenge target."""
    return Measurement.objects.create(
        submission=submission, image_set=image_set, model_name=submission.challenge.model_name,
        probe_sha256=submission.probe_sha256, manifest_sha256=image_set.manifest_sha256,
        progress_total=image_set.n_images, rerun_of_id=rerun_of_id,
    )


def measurement_claim(*, measurement_id: int, new_attempt: bool = True) -> Measurement | None:
    """pending/running → running, counted as an attempt; None when it already finished (a
    redelivery has nothing to do). The caller holds the measurement's lease."""
    fields = {"status": MEASUREMENT_RUNNING}
    if new_attempt:
        fields["attempts"] = F("attempts") + 1
    if not Measurement.objects.filter(pk=measurement_id, status__in=MEASUREMENT_IN_FLIGHT).update(**fields):
        return None
    return Measurement.objects.select_related("submission__challenge", "image_set").get(pk=measurement_id)


def measurement_release(*, measurement_id: int) -> bool:
    """running → pending, so the next delivery claims it again (reconcile, after a lease expired)."""
    return bool(Measurement.objects.filter(pk=measurement_id, status=MEASUREMENT_RUNNING)
                .update(status=MEASUREMENT_PENDING))


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
    return bool(Measurement.objects.filter(pk=measurement_id, status__in=MEASUREMENT_IN_FLIGHT)
                .update(status=MEASUREMENT_FAILED, error=error[:2000], finished_at=timezone.now()))


def measurement_store(*, measurement_id: int, text: str, model_version: str) -> bool:
    """running → done with the document stored byte for byte; False if another delivery stored it."""
    return bool(Measurement.objects.filter(pk=measurement_id, status=MEASUREMENT_RUNNING).update(
        status=MEASUREMENT_DONE, document_json=text, model_version=model_version,
        document_sha256="sha256:" + hashlib.sha256(text.encode()).hexdigest(), finished_at=timezone.now(),
    ))


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
