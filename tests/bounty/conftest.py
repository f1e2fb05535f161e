"""Participants, challenges and submissions in the states the public pages care about."""
from __future__ import annotations

import pytest

from bounty import services, states
from tests.factories import ROOT, challenge_create, user_create


@pytest.fixture
def alice(db):
    return user_create("alice")


@pytest.fixture
def bob(db):
    return user_create("bob")


@pytest.fixture
def challenge(db):
    return challenge_create(slug="faces")


def move_through(submission, *path: str, reason: str = "") -> None:
    """Walk a submission along allowed transitions, audited like the worker does."""
    for target in path:
        submission.refresh_from_db()
        assert services.submission_transition(
            submission_id=submission.pk, from_states=(submission.state,), to_state=target,
            reason=reason or f"moved to {target} by the test",
        )
    submission.refresh_from_db()


def publish(submission, *, judge) -> None:
    """Accept and publish an in_review submission through the service judges use."""
    from review.services import submission_publish

    submission.challenge.judges.add(judge)
    submission_publish(submission=submission, judge=judge)
    submission.refresh_from_db()
    assert submission.state == states.PUBLISHED


@pytest.fixture
def measured(db, challenge, alice, monkeypatch):
    """Alice's submission with a real run, image set, measurement, plots and a provisional score."""
    from tests.grading.test_judge_console import measured_submission_create

    # The example probe imports probekit, as it would inside the sandbox where it is on the path.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return measured_submission_create(challenge=challenge, participant=alice)
