"""A judge re-runs a measured submission: same probe, same model version, a byte-identical document."""
from __future__ import annotations

import pytest
from django.urls import reverse

from bounty import states
from grading.models import Measurement
from tests.conftest import wait_for
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_judge_rerun_reproduces_the_metrics_document_byte_for_byte(client, celery_worker):
    judge = user_create("rita")
    challenge = challenge_create(slug="rerun", judges=[judge])
    submission = submission_create(challenge=challenge, participant=user_create("ron"))
    wait_for(lambda: submission.__class__.objects.get(pk=submission.pk).state == states.IN_REVIEW, timeout=180,
             what="the submission to be measured")

    client.force_login(judge)
    response = client.post(reverse("judge-rerun", args=[submission.pk]))
    assert response.status_code == 302
    rerun = wait_for(lambda: Measurement.objects.filter(submission=submission, rerun_of__isnull=False,
                                                        status="done").first(), timeout=180, what="the re-run")
    original = rerun.rerun_of
    assert rerun.document_sha256 == original.document_sha256 and rerun.document_json == original.document_json
    submission.refresh_from_db()
    assert submission.state == states.IN_REVIEW  # a re-run moves nothing
    assert submission.runs.count() == 2

    page = client.get(reverse("judge-submission", args=[submission.pk])).content.decode()
    assert "Identical:" in page and "byte for byte" in page
