"""A judge logs in, opens a measured submission, rates it, decides and publishes; the public
leaderboard shows the aggregated score. Headless Chromium against the live server."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from bounty import states
from bounty.models import Submission
from review.models import Review
from tests.browser.conftest import log_in
from tests.factories import user_create
from tests.grading.test_judge_console import challenge_for_tests, measured_submission_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STRONG = {"identity_axes": "several", "wellbeing": "moderate", "affected_users": "about_1b",
          "likelihood": "frequent", "justification": "strong", "clarity": "adequate", "creativity": "c10"}


def test_judge_rates_decides_and_publishes_and_the_leaderboard_shows_the_score(page, artifacts_dir):
    judge, other_judge = user_create("jules", password="judge-pw-1"), user_create("kim")
    participant = user_create("alice")
    challenge = challenge_for_tests(slug="browser-judged", judges=[judge, other_judge])
    submission = measured_submission_create(challenge=challenge, participant=participant)

    log_in(page, "jules", "judge-pw-1")
    page.goto("/judge/")
    expect(page.locator("#judge-queue")).to_contain_text(submission.title)
    page.keyboard.press("j")  # keyboard: select the first row, Enter opens it
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/judge/submissions/{submission.pk}/$"))
    expect(page.locator("#participant")).to_have_text("Participant (hidden until decided)")
    expect(page.locator("#probe-source .highlight").first).to_be_visible()

    page.select_option("#harm_type", "under-representation")
    for part, level in STRONG.items():
        page.select_option(f"#rate_{part}", level)
    for factor in ("damage", "affected_users", "likelihood", "justification", "clarity", "creativity"):
        page.fill(f"#why_{factor}", f"The measurement and write-up support this {factor} level.")
    expect(page.locator("#live-score")).to_have_text("60.84")  # computed in the browser, before saving
    expect(page.locator("#live-formula")).to_contain_text("(20 × 3.042)")
    page.screenshot(path=str(artifacts_dir / "judge-console-rating.png"), full_page=True)
    page.click("#rubric-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Your review is saved: 60.84 points.")
    assert Review.objects.get(submission=submission, judge=judge).score == 60.84

    page.fill("#decision-reason", "Clear, measured and reproducible.")
    page.click("#decision-form button[value=accepted]")
    expect(page.locator("#state")).to_have_text(states.ACCEPTED)
    expect(page.locator("#participant")).to_have_text("alice")  # blind review ends with the decision
    page.click("#publish")
    expect(page.locator("#state")).to_have_text(states.PUBLISHED)
    expect(page.locator("#audit")).to_contain_text("Clear, measured and reproducible.")

    page.goto(f"/challenges/{challenge.slug}/leaderboard/")
    expect(page.locator("#leaderboard")).to_contain_text(submission.title)
    expect(page.locator("#leaderboard")).to_contain_text("60.84")
    page.screenshot(path=str(artifacts_dir / "leaderboard-after-publish.png"), full_page=True)
    assert Submission.objects.get(pk=submission.pk).final_score == 60.84
