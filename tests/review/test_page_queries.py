"""Pinned query counts of the pages a submission is read on: they must not grow with its history."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from review import services
from tests.factories import user_create
from tests.grading.test_judge_console import challenge_for_tests, measured_submission_create

pytestmark = pytest.mark.django_db

# The counts as measured; a change that adds a query per row or per event shows up here.
SUBMISSION_PAGE_QUERIES = 12  # with the replication on a fresh draw
JUDGE_PAGE_QUERIES = 18  # one more: a re-run whose probe has not been measured yet; one: the replication


@pytest.fixture
def page_setup(monkeypatch):
    from tests.factories import ROOT

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    judges = [user_create("jules"), user_create("kim")]
    challenge = challenge_for_tests(slug="queries", judges=judges)
    participant = user_create("alice")
    submission = measured_submission_create(challenge=challenge, participant=participant)
    return submission, participant, judges


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _grow(submission, judges) -> None:
    """More history: comments, an assignment and a review per judge."""
    for judge in judges:
        services.review_assign(submission=submission, judge=judge, assigned_by=judge)
        services.comment_create(submission=submission, author=judge, body=f"note from {judge.username}")


def test_the_submission_page_query_count_is_pinned_and_flat(client, page_setup):
    submission, participant, judges = page_setup
    client.force_login(participant)
    url = reverse("submission-detail", args=[submission.pk])
    first = _count(client, url)
    _grow(submission, judges)
    assert _count(client, url) == first == SUBMISSION_PAGE_QUERIES


def test_the_judge_page_query_count_is_pinned_and_flat(client, page_setup):
    submission, _participant, judges = page_setup
    client.force_login(judges[0])
    url = reverse("judge-submission", args=[submission.pk])
    first = _count(client, url)
    _grow(submission, judges)
    assert _count(client, url) == first == JUDGE_PAGE_QUERIES
