"""One accept path: publishing from review goes through the decision, with its conflict check,
its final score and one transaction."""
from __future__ import annotations

import pytest

from bounty import states
from bounty.errors import PUBLISH_NEEDS_SCORE, BountyError
from bounty.models import Submission
from grading.models import Score
from review import services
from tests.factories import challenge_create, user_create
from tests.grading.test_judge_console import measured_submission_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(monkeypatch):
    from tests.factories import ROOT

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    judge = user_create("jude")
    challenge = challenge_create(slug="accepting", judges=[judge])
    submission = measured_submission_create(challenge=challenge, participant=user_create("pat"))
    return submission, judge


def test_a_judge_who_declared_a_conflict_cannot_accept_through_the_publish_button(judged):
    submission, judge = judged
    services.review_declare_conflict(submission=submission, judge=judge, note="I coached this participant")
    with pytest.raises(BountyError, match=services.CONFLICT_DECLARED):
        services.submission_publish(submission=submission, judge=judge)
    submission.refresh_from_db()
    assert submission.state == states.IN_REVIEW


def test_publishing_from_review_accepts_with_a_final_score_and_an_audited_decision(judged):
    submission, judge = judged
    services.submission_publish(submission=submission, judge=judge)
    submission.refresh_from_db()
    assert submission.state == states.PUBLISHED
    assert submission.final_score == submission.provisional_score
    assert Score.objects.filter(submission=submission, kind=Score.FINAL).count() == 1
    moves = list(submission.events.values_list("from_state", "to_state", "actor_id"))
    assert (states.IN_REVIEW, states.ACCEPTED, judge.pk) in moves and (states.ACCEPTED, states.PUBLISHED, judge.pk) in moves


def test_a_published_finding_carries_the_interval_of_its_headline_test(judged):
    from grading import selectors
    from grading.intervals import headline_interval

    submission, judge = judged
    services.submission_publish(submission=submission, judge=judge)
    submission.refresh_from_db()
    expected = headline_interval(selectors.document_of(selectors.measurement_of_record(submission=submission)))
    assert expected is not None and submission.interval_test == expected.test
    assert (submission.interval_low, submission.interval_high) == (expected.low, expected.high)
    assert 0.0 <= submission.interval_low <= submission.interval_high


def test_a_refused_publish_leaves_nothing_half_done(judged):
    submission, judge = judged
    Submission.objects.filter(pk=submission.pk).update(provisional_score=None)
    submission.refresh_from_db()
    with pytest.raises(BountyError, match=PUBLISH_NEEDS_SCORE.split(":")[0]):
        services.submission_publish(submission=submission, judge=judge)
    submission.refresh_from_db()
    assert submission.state == states.IN_REVIEW  # not left accepted
    assert not Score.objects.filter(submission=submission, kind=Score.FINAL).exists()


def test_someone_who_does_not_judge_the_challenge_cannot_publish(judged):
    submission, _judge = judged
    with pytest.raises(BountyError, match=services.NOT_A_JUDGE):
        services.submission_publish(submission=submission, judge=user_create("stranger"))


def test_the_migration_fills_in_the_interval_of_a_finding_published_before_it(judged):
    import importlib

    from django.apps import apps

    submission, judge = judged
    services.submission_publish(submission=submission, judge=judge)
    submission.refresh_from_db()
    published = (submission.interval_test, submission.interval_low, submission.interval_high)
    Submission.objects.filter(pk=submission.pk).update(interval_test="", interval_low=None, interval_high=None,
                                                       interval_estimate=None)
    migration = importlib.import_module("bounty.migrations.0011_leaderboard_interval")
    migration.fill_intervals(apps, None)
    submission.refresh_from_db()
    assert published[0] and (submission.interval_test, submission.interval_low, submission.interval_high) == published
