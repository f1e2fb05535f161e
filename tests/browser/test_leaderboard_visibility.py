"""A participant opens a challenge's leaderboards in Chromium: the hidden phase shows nothing, the public one its rows."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from bounty.models import BOARD_HIDDEN_UNTIL_END, BOARD_PUBLIC
from tests.bounty.test_phases import phase_create, published_in
from tests.browser.conftest import log_in
from tests.factories import challenge_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_hidden_board_shows_a_participant_nothing_and_the_public_one_its_rows(page, artifacts_dir, live_server):
    challenge = challenge_create(slug="phased-browser", title="Phased crops")
    warm_up = phase_create(challenge, "Warm-up", start_days=-10, end_days=-2, visibility=BOARD_PUBLIC)
    final = phase_create(challenge, "Final", start_days=-1, end_days=5, visibility=BOARD_HIDDEN_UNTIL_END)
    published_in(warm_up, [12.5, 7.0])  # "Finding 0" by p0, "Finding 1" by p1
    hidden_rows = published_in(final, [99.0, 55.0])  # by p0 and p1
    policy_errors = []
    page.on("console", lambda msg: policy_errors.append(msg.text) if "Content Security Policy" in msg.text else None)

    log_in(page, "p1", "pw-for-tests-1")
    page.goto(f"/challenges/{challenge.slug}/leaderboard/")  # the open phase by default: Final, hidden
    expect(page.locator("#leaderboard-hidden")).to_contain_text("hidden until the phase ends")
    expect(page.locator("#leaderboard")).to_have_count(0)
    content = page.content()
    assert "99.0" not in content and "findings)" not in content
    # p1 sees their own result of the hidden phase, and no one else's.
    expect(page.locator("#own-results")).to_contain_text("55.0")
    assert hidden_rows[0].title not in page.locator("#own-results").inner_text()
    page.screenshot(path=str(artifacts_dir / "leaderboard-hidden.png"), full_page=True)

    page.click("#leaderboard-phases >> text=Warm-up")
    expect(page.locator("#leaderboard tr")).to_have_count(3)  # header and two rows
    expect(page.locator("#leaderboard")).to_contain_text("12.5")
    expect(page.locator("#leaderboard")).not_to_contain_text("99.0")
    page.screenshot(path=str(artifacts_dir / "leaderboard-public.png"), full_page=True)
    assert policy_errors == []
