"""The whole flow on real parts: web form → Celery worker → bubblewrap → measurement → score → judge → leaderboard."""
import json

import pytest
from django.urls import reverse

from bounty import states
from bounty.models import Submission
from tests.conftest import wait_for
from tests.factories import EXAMPLE_PROBE, challenge_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_submitted_probe_goes_through_every_state_to_the_leaderboard(client, celery_worker):
    participant, judge = user_create("alice"), user_create("jules")
    challenge = challenge_create(judges=[judge])

    client.force_login(participant)
    with EXAMPLE_PROBE.open("rb") as probe:
        response = client.post(
            reverse("challenge-submit", args=[challenge.slug]),
            {"title": "High contrast wins", "probe": probe, "writeup": "It does.", "harm_type": "under-representation"},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    submission = Submission.objects.get(participant=participant)

    def reached_review():
        submission.refresh_from_db()
        assert submission.state not in (states.FAILED, states.PLATFORM_ERROR), (submission.state_reason, celery_worker.log_tail())
        return submission.state == states.IN_REVIEW

    wait_for(reached_review, timeout=240, what="the submission to reach in_review")
    seen = list(submission.events.values_list("to_state", flat=True))
    assert seen == [states.SUBMITTED, states.QUEUED, states.RUNNING, states.MEASURING, states.MEASURED, states.IN_REVIEW]
    run = submission.runs.get()
    assert run.status == "ok" and run.backend == "bwrap"
    document = json.loads(submission.measurements.get().document_json)
    preference = next(t for t in document["tests"] if t["kind"] == "preference" and t["variant"] is None)
    assert preference["groups"] == ["high", "low"] and preference["n"] + preference["n_neither"] == 24
    assert submission.provisional_score is not None

    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert "in_review" in page and preference["id"] in page

    client.force_login(judge)
    response = client.post(reverse("judge-publish", args=[submission.pk]))
    assert response.status_code == 302
    submission.refresh_from_db()
    assert submission.state == states.PUBLISHED and submission.final_score == submission.provisional_score

    client.logout()
    board = client.get(reverse("leaderboard", args=[challenge.slug])).content.decode()
    assert "High contrast wins" in board and "alice" in board
