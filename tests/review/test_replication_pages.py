"""Where people see a replication: the judge page (estimates side by side), the participant's page
(plain words), the status JSON, and the leaderboard API's mark."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from bounty.models import Submission
from grading.models import Replication
from tests.factories import user_create
from tests.grading.test_judge_console import challenge_for_tests, measured_submission_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def replicated():
    judge, participant = user_create("jude"), user_create("pia")
    challenge = challenge_for_tests(slug="rep-pages", judges=[judge])
    submission = measured_submission_create(challenge=challenge, participant=participant)
    measurement = submission.measurements.get()
    test = next(t for t in json.loads(measurement.document_json)["tests"] if t["p_holm"] is not None)
    rep = Replication.objects.create(
        submission=submission, measurement=measurement, status="pending", seed=424242,
        tests=[{"id": test["id"], "estimate": 0.61, "ci": [0.55, 0.67], "p_value": 0.001, "p_holm": 0.001,
                "same_direction": True}],
        robustness={"status": "done", "tests": {test["id"]: {
            **{c: {"estimate": 0.6, "p_value": 0.01, "same_direction": True} for c in ("pad", "jpeg", "scale")},
            "mirror": {"estimate": 0.45, "p_value": 0.3, "same_direction": False},
            "verdict": "fragile", "broken_by": ["mirror"]}}})
    return judge, participant, submission, rep, test


def test_pending_hides_the_seed_final_shows_it_in_every_place(client, replicated):
    judge, participant, submission, rep, test = replicated
    client.force_login(participant)
    status = client.get(reverse("submission-status", args=[submission.pk])).json()
    assert status["replication"]["status"] == "pending" and status["replication"]["seed"] is None
    assert status["robustness"]["tests"][test["id"]]["broken_by"] == ["mirror"]
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert "Replication on a fresh draw is pending" in page and "424242" not in page

    Replication.objects.filter(pk=rep.pk).update(status="replicated", finished_at=timezone.now())
    body = client.get(reverse("api-submission-detail", args=[submission.pk])).json()
    assert body["replication"]["status"] == "replicated" and body["replication"]["seed"] == 424242
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert f"Came back on a fresh draw: {test['id']} 0.61 [0.55, 0.67]." in page.replace("&gt;", ">")

    client.force_login(judge)
    page = client.get(reverse("judge-submission", args=[submission.pk])).content.decode()
    assert 'id="replication-table"' in page and "0.61 [0.55, 0.67]" in page
    assert f"{test['estimate']:.2f} [" in page  # the first draw's estimate beside it
    assert "fragile: broken by mirror" in page


def test_the_leaderboard_api_marks_the_replication(client, replicated):
    _judge, _participant, submission, rep, _test = replicated
    Replication.objects.filter(pk=rep.pk).update(status="replicated", finished_at=timezone.now())
    Submission.objects.filter(pk=submission.pk).update(state="published", final_score=12.0,
                                                       published_at=timezone.now())
    rows = client.get(reverse("api-leaderboard", args=[submission.challenge.slug])).json()["results"]
    assert [(r["submission"], r["replication"], r["robust"]) for r in rows] == [(submission.pk, "replicated", False)]


def test_the_leaderboard_page_marks_replicated_and_robust_findings(client, replicated):
    _judge, _participant, submission, rep, test = replicated
    Submission.objects.filter(pk=submission.pk).update(state="published", final_score=12.0,
                                                       published_at=timezone.now())
    page = client.get(reverse("leaderboard", args=[submission.challenge.slug])).content.decode()
    assert "mark-replicated" not in page and "mark-robust" not in page  # pending, and fragile under mirror
    robust = {"status": "done", "tests": {test["id"]: {"verdict": "robust", "broken_by": []}}}
    Replication.objects.filter(pk=rep.pk).update(status="replicated", finished_at=timezone.now(), robustness=robust)
    page = client.get(reverse("leaderboard", args=[submission.challenge.slug])).content.decode()
    assert 'class="badge mark-replicated"' in page and 'class="badge mark-robust"' in page
