"""Every service that changes a decision leaves an audit row, even when no state moves."""
from __future__ import annotations

import re

import pytest

from bounty import services as bounty_services
from bounty.errors import BountyError
from bounty.models import RESPONSE_FIXED, SubmissionEvent
from review import services
from review.models import Review, ReviewAssignment
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return {"jules": user_create("jules"), "olga": user_create("olga"), "pat": user_create("pat")}


@pytest.fixture
def submission(people):
    challenge = challenge_create(slug="audited", judges=[people["jules"]])
    challenge.organizers.add(people["olga"])
    return submission_create(challenge=challenge, participant=people["pat"])


def _reasons(submission) -> list[str]:
    return list(SubmissionEvent.objects.filter(submission=submission, from_state=submission.state,
                                               to_state=submission.state).values_list("reason", flat=True))


def test_an_assignment_is_audited_once_with_who_assigned_whom(people, submission):
    services.review_assign(submission=submission, judge=people["jules"], assigned_by=people["olga"])
    services.review_assign(submission=submission, judge=people["jules"], assigned_by=people["olga"])  # no change
    assert ReviewAssignment.objects.filter(submission=submission).count() == 1
    event = SubmissionEvent.objects.get(submission=submission, reason__contains="assigned")
    assert event.actor == people["olga"] and event.reason == "jules assigned to review (by olga)"


def test_a_declared_conflict_is_audited_with_its_reason(people, submission):
    services.review_declare_conflict(submission=submission, judge=people["jules"], note="I coached this team")
    assert Review.objects.get(submission=submission, judge=people["jules"]).conflict_of_interest
    assert _reasons(submission) == ["jules declared a conflict of interest: I coached this team"]


def test_an_organizer_response_is_audited_with_its_version(people, submission):
    bounty_services.submission_respond(submission=submission, response=RESPONSE_FIXED, version="2.1", actor=people["olga"])
    event = SubmissionEvent.objects.get(submission=submission, reason__startswith="the organizer responded")
    assert event.actor == people["olga"] and event.reason == "the organizer responded: fixed 2.1"


def test_a_refused_assignment_leaves_no_row(people, submission):
    with pytest.raises(BountyError, match=re.escape(services.ASSIGN_NOT_JUDGE.format(username="pat"))):
        services.review_assign(submission=submission, judge=people["pat"], assigned_by=people["pat"])
    assert not SubmissionEvent.objects.filter(submission=submission, reason__contains="assigned").exists()
