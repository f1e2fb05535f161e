"""Judge pages exist only for the judges of a challenge: everyone else gets 404 (or the login page)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from bounty import states
from review.models import Review, ReviewAssignment, SubmissionComment
from tests.factories import user_create
from tests.grading.test_judge_console import (
    HALT_RATINGS,
    TEST_FIXTURE_METRICS_DOCUMENT,
    WHY,
    challenge_for_tests,
    measured_submission_create,
)


@pytest.fixture
def world(db):
    alice, bob, jules, stranger_judge = (user_create(n) for n in ("alice", "bob", "jules", "judge-elsewhere"))
    challenge = challenge_for_tests(judges=[jules])
    challenge_for_tests(slug="elsewhere", judges=[stranger_judge])
    mine = measured_submission_create(challenge=challenge, participant=alice, document=TEST_FIXTURE_METRICS_DOCUMENT)
    theirs = measured_submission_create(challenge=challenge, participant=bob, title="Bob's finding",
                                        document=TEST_FIXTURE_METRICS_DOCUMENT)
    return {"alice": alice, "bob": bob, "jules": jules, "stranger_judge": stranger_judge, "mine": mine, "theirs": theirs}


def judge_requests(submission) -> list[tuple[str, str, dict]]:
    """Every judge URL with a request a judge could make on it."""
    measurement = submission.measurements.get()
    pk = submission.pk
    return [
        ("get", reverse("judge-queue"), {}),
        ("get", reverse("judge-submission", args=[pk]), {}),
        ("post", reverse("judge-review", args=[pk]), {**HALT_RATINGS, **WHY}),
        ("post", reverse("judge-decide", args=[pk]), {"decision": "accepted", "reason": "ok"}),
        ("post", reverse("judge-reopen", args=[pk]), {"reason": "again"}),
        ("post", reverse("judge-publish", args=[pk]), {}),
        ("post", reverse("judge-assign", args=[pk]), {}),
        ("post", reverse("judge-conflict", args=[pk]), {"reason": "x"}),
        ("post", reverse("judge-comment", args=[pk]), {"body": "hello", "to_participant": "1"}),
        ("get", reverse("judge-artifact", args=[pk, measurement.pk, "contact_sheet.png"]), {}),
    ]


@pytest.mark.parametrize("who", ["alice", "stranger_judge"])
def test_participants_and_other_challenges_judges_get_404_on_every_judge_page(client, world, who):
    client.force_login(world[who])
    for submission in (world["mine"], world["theirs"]):
        for method, url, data in judge_requests(submission):
            if who == "stranger_judge" and url == reverse("judge-queue"):
                continue  # they judge another challenge: their queue exists, without these submissions
            response = getattr(client, method)(url, data)
            assert response.status_code == 404, (who, method, url, response.status_code)
    for submission in (world["mine"], world["theirs"]):
        submission.refresh_from_db()
        assert submission.state == states.IN_REVIEW
    assert not Review.objects.exists() and not ReviewAssignment.objects.exists() and not SubmissionComment.objects.exists()


def test_a_judge_of_another_challenge_does_not_see_these_submissions_in_the_queue(client, world):
    client.force_login(world["stranger_judge"])
    page = client.get(reverse("judge-queue"), {"state": ""}).content.decode()
    assert "Bob&#x27;s finding" not in page and world["mine"].title not in page


def test_anonymous_visitors_are_sent_to_log_in(client, world):
    for method, url, data in judge_requests(world["mine"]):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_a_participant_gets_404_on_another_participants_submission(client, world):
    client.force_login(world["alice"])
    assert client.get(reverse("submission-detail", args=[world["theirs"].pk])).status_code == 404
    assert client.get(reverse("submission-detail", args=[world["mine"].pk])).status_code == 200


def test_a_judge_who_is_also_a_participant_cannot_judge_their_own_submission(client, world):
    challenge = world["mine"].challenge
    challenge.judges.add(world["alice"])
    client.force_login(world["alice"])
    assert client.get(reverse("judge-submission", args=[world["mine"].pk])).status_code == 404
    assert client.get(reverse("judge-submission", args=[world["theirs"].pk])).status_code == 200
    queue = client.get(reverse("judge-queue")).content.decode()
    assert "Bob&#x27;s finding" in queue and world["mine"].title not in queue


def test_the_judge_of_the_challenge_gets_every_page(client, world):
    client.force_login(world["jules"])
    assert client.get(reverse("judge-queue")).status_code == 200
    assert client.get(reverse("judge-submission", args=[world["mine"].pk])).status_code == 200
