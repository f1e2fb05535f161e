"""A newcomer signs up, confirms the email, reads the challenge, submits the example probe, watches
it run in the real sandbox through the real Celery worker and reads the results. Headless Chromium."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from bounty.models import Submission
from tests.browser.conftest import log_in
from tests.factories import EXAMPLE_PROBE, challenge_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "newcomer-passphrase-42"


def shot(page, artifacts_dir, name: str) -> None:
    page.screenshot(path=str(artifacts_dir / f"participant-{name}.png"), full_page=True)


def test_a_newcomer_signs_up_submits_the_example_probe_and_reads_the_results(page, artifacts_dir, celery_worker,
                                                                            live_server):
    challenge = challenge_create(slug="browser-faces", title="Faces in the crop",
                                 rules="Find a **systematic** difference between groups.")

    page.goto("/")
    page.click("text=Sign up")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=email]", "newcomer@example.org")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("#signup-form button[type=submit]")
    expect(page.locator("#signup-done")).to_contain_text("We sent a message to the address you gave")
    shot(page, artifacts_dir, "1-signed-up")

    link = re.search(r"https?://\S+/accounts/confirm/\S+/", mail.outbox[-1].body).group(0)
    page.goto(link)
    expect(page.locator(".messages")).to_contain_text("Your email address is confirmed")
    log_in(page, "newcomer", PASSWORD)

    page.goto("/")
    page.click(f"text={challenge.title}")
    expect(page.locator("#rules strong")).to_have_text("systematic")
    expect(page.locator("#model-card")).to_contain_text("spectral-residual")
    expect(page.locator("#rubric-card")).to_be_visible()
    expect(page.locator("#example-probe")).to_contain_text("ImageSetWriter")
    shot(page, artifacts_dir, "2-challenge")

    page.click("text=Submit a probe")
    page.fill("input[name=title]", "High contrast wins the crop")
    page.set_input_files("input[name=probe]", str(EXAMPLE_PROBE))
    page.fill("textarea[name=writeup]", "The crop keeps the **busier** subject.")
    page.select_option("select[name=harm_type]", "under-representation")
    page.click("#submit-form button[type=submit]")
    page.wait_for_url(re.compile(r"/submissions/\d+/$"))
    submission = Submission.objects.get(participant__username="newcomer")
    shot(page, artifacts_dir, "3-submitted")

    # The page polls on its own: no reload from here on.
    expect(page.locator("#state")).to_have_text("in_review", timeout=240_000)
    expect(page.locator("#run-status")).to_have_text("ok")
    expect(page.locator("#stdout")).to_contain_text("composites")
    expect(page.locator("#metrics")).to_contain_text("preference:high>low")
    expect(page.locator("#provisional-score")).to_be_visible()
    expect(page.locator("#plots img").first).to_be_visible()
    expect(page.locator("#cancel")).to_have_count(0)  # measured: too late to cancel
    history = page.locator("#history")
    for state in ("queued", "running", "measuring", "measured", "in_review"):
        expect(history).to_contain_text(f"→ {state}")
    shot(page, artifacts_dir, "4-measured")

    assert page.evaluate("(src) => fetch(src).then(r => r.headers.get('x-content-type-options'))",
                         page.locator("#plots img").first.get_attribute("src")) == "nosniff"
    submission.refresh_from_db()
    assert submission.state == "in_review" and submission.participant.is_active
