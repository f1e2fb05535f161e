"""The leaderboard in Chromium at 1280 px and on a phone: each row's interval, its tie group and the
baselines are on screen with the sentence that explains them, and the page never scrolls sideways."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from bounty.models import Submission
from tests.bounty.test_leaderboard import published_rows, with_intervals
from tests.factories import challenge_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def _board():
    challenge = challenge_create(slug="intervals-browser", title="Intervals and baselines")
    rows = published_rows(challenge, [95.0, 90.0, 80.0, 70.0])
    Submission.objects.filter(pk=rows[0].pk).update(
        is_demo=True, title="Reference probe: skin tone composites, the demo's seeded submission")
    Submission.objects.filter(pk=rows[1].pk).update(
        title="A long finding title that has to wrap inside its cell rather than widen the whole table")
    with_intervals(rows, [(0.30, 0.40), (0.20, 0.30), (0.25, 0.35), (0.50, 0.60)])
    return challenge


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_intervals_tie_groups_and_baselines_are_shown_and_explained(browser, live_server, artifacts_dir, device):
    challenge = _board()
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORTS[device])
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        page.goto(f"/challenges/{challenge.slug}/leaderboard/")
        board = page.locator("#leaderboard")
        rows = board.locator("tr")
        expect(rows).to_have_count(5)
        # The baseline is listed at its score, marked, without a rank; ranks count the others.
        expect(rows.nth(1).locator(".badge")).to_have_text("baseline")
        expect(rows.nth(2).locator("td").first).to_have_text("1")
        expect(rows.nth(2).locator("td.interval")).to_have_text("25.0 [20.0, 30.0]")
        expect(rows.nth(2).locator("td.tie")).to_have_text("ranks 1–2")
        expect(rows.nth(3).locator("td.tie")).to_have_text("ranks 1–2")
        expect(rows.nth(4).locator("td.tie")).to_have_text("")
        explained = page.locator("#leaderboard-intervals")
        expect(explained).to_be_visible()
        for words in ("95% interval", "Tie group", "never ranked and never eligible for prizes"):
            expect(explained).to_contain_text(words)
        width = page.evaluate("window.innerWidth")
        # The page never scrolls sideways; the explanation wraps within the viewport.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        box = explained.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        if device == "desktop":
            # At 1280 px every column is on screen, the interval column whole and on one line.
            assert page.evaluate("(t => t.scrollWidth <= t.clientWidth)(document.querySelector('#leaderboard'))")
            cell = rows.nth(2).locator("td.interval span").bounding_box()
            assert cell["x"] + cell["width"] <= width
            line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#leaderboard td.interval')).lineHeight)")
            assert cell["height"] < 1.5 * line
        else:
            # On a phone the table scrolls inside itself: its last column is reachable.
            assert board.evaluate("t => getComputedStyle(t).overflowX") == "auto"
            board.evaluate("t => { t.scrollLeft = t.scrollWidth; }")
            last = rows.nth(2).locator("td").last
            last.scroll_into_view_if_needed()
            box = last.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
        page.screenshot(path=str(artifacts_dir / f"leaderboard-intervals-{device}.png"), full_page=True)
    finally:
        context.close()
