"""A queued submission's page shows its place in the queue and the estimated wait. Headless Chromium."""
from __future__ import annotations

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from tests.bounty.test_fair_queue import _finished_measurements, submission_create
from tests.browser.conftest import log_in
from tests.factories import challenge_create, user_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_queued_submission_shows_its_position_and_wait(page, live_server, paused_worker):
    challenge = challenge_create(slug="queue-browser", daily_limit=50, total_limit=50)
    _finished_measurements(challenge, user_create("dave"), [60, 60, 60])  # the queue's observed pace
    submission_create(challenge=challenge, participant=user_create("bob"))
    alice = user_create("alice", password="queue-browser-pw")
    mine = submission_create(challenge=challenge, participant=alice)
    with override_settings(WORKER_CONCURRENCY=2):
        log_in(page, "alice", "queue-browser-pw")
        page.goto(f"/submissions/{mine.pk}/")
        expect(page.locator("#live")).to_contain_text("position 2 in the queue, about 1 min to start")
