"""The judge page at full length in a real browser: a refused decision shows its message at the
field, in view; the write-up is Markdown with no script run; a re-run's comparison appears
without a reload; the favicon is served; the leaderboard fits a phone."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from bounty.models import Submission
from pipeline.models import ProbeRun
from review import services
from tests.browser.conftest import log_in
from tests.factories import user_create
from tests.grading.test_judge_console import challenge_for_tests, measured_submission_create, rerun_finished

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WRITEUP = ("## Method\n\nThe *busier* subject keeps the crop.\n\n<script>window.injected = 1</script>\n\n"
           "[run me](javascript:window.injected=2)\n\n" + "Padding paragraph so the page is long.\n\n" * 60)


@pytest.fixture
def judged():
    judge = user_create("jules", password="judge-pw-1")
    challenge = challenge_for_tests(slug="browser-pages", judges=[judge])
    submission = measured_submission_create(challenge=challenge, participant=user_create("alice"))
    Submission.objects.filter(pk=submission.pk).update(writeup=WRITEUP)
    return challenge, submission


def test_a_refused_accept_shows_its_message_at_the_reason_field_in_view(page, judged, artifacts_dir):
    _, submission = judged
    log_in(page, "jules", "judge-pw-1")
    page.goto(f"/judge/submissions/{submission.pk}/")
    page.click("#decision-form button[value=accepted]")  # no reason given
    page.wait_for_url(re.compile(rf"/judge/submissions/{submission.pk}/#decision$"))
    error = page.locator("#decision-reason-error")
    expect(error).to_have_text(services.REASON_REQUIRED)
    expect(error).to_be_in_viewport()
    expect(page.locator("#decision-reason")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("document.documentElement.scrollHeight") > 2 * page.viewport_size["height"]
    page.screenshot(path=str(artifacts_dir / "judge-refused-accept.png"))


def test_the_writeup_renders_as_markdown_and_runs_no_script(page, judged):
    _, submission = judged
    log_in(page, "jules", "judge-pw-1")
    page.goto(f"/judge/submissions/{submission.pk}/")
    expect(page.locator("#writeup h2")).to_have_text("Method")
    expect(page.locator("#writeup em")).to_have_text("busier")
    assert page.locator("#writeup script").count() == 0
    expect(page.locator("#writeup")).not_to_contain_text("window.injected")
    assert page.evaluate("typeof window.injected") == "undefined"
    assert "javascript:" not in (page.locator("#writeup").inner_html())
    page.click("#writeup > summary")  # the section folds
    expect(page.locator("#writeup h2")).to_be_hidden()


def test_a_reruns_comparison_appears_without_a_reload(page, judged):
    _, submission = judged
    original = submission.measurements.get()
    run = ProbeRun.objects.create(submission=submission, backend="bwrap", details={"rerun_of": original.pk})
    log_in(page, "jules", "judge-pw-1")
    page.goto(f"/judge/submissions/{submission.pk}/")
    expect(page.locator("#rerun-result")).to_contain_text("Re-run in progress (queued)")
    page.evaluate("window.sameDocument = true")
    run.delete()  # the probe ran; rerun_finished adds its finished run and the stored measurement
    rerun_finished(submission=submission)
    expect(page.locator("#rerun-table")).to_be_visible()
    expect(page.locator("#rerun-result")).to_contain_text("Identical")
    assert page.evaluate("window.sameDocument") is True  # no reload happened


def test_the_favicon_is_linked_and_served(page):
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto("/")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(href).status == 200
    page.wait_for_load_state("networkidle")
    assert missing == []


def test_the_leaderboard_fits_a_phone(browser, live_server, judged):
    challenge, submission = judged
    from tests.bounty.conftest import publish

    publish(submission, judge=challenge.judges.get())
    context = browser.new_context(base_url=live_server.url, viewport={"width": 375, "height": 740})
    phone = context.new_page()
    try:
        phone.goto(f"/challenges/{challenge.slug}/leaderboard/")
        expect(phone.locator("#leaderboard")).to_contain_text(submission.title)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()


# A column of the metrics table that sticks out of its card is one a judge has to scroll to.
METRICS_OVERFLOW = """() => {
  const table = document.querySelector('#metrics table');
  const box = table.closest('.table-scroll');
  const card = table.closest('.card');
  const holm = [...table.querySelectorAll('th')].find(th => th.textContent.trim() === 'p (Holm)');
  const effect = [...table.querySelectorAll('th')].find(th => th.textContent.trim() === 'Effect size');
  return {scroll: box.scrollWidth - box.clientWidth,
          holm: holm.getBoundingClientRect().right - card.getBoundingClientRect().right,
          effect: effect.getBoundingClientRect().right - card.getBoundingClientRect().right,
          page: document.documentElement.scrollWidth - window.innerWidth};
}"""


@pytest.mark.parametrize("width, height", [(1280, 800), (375, 740)])
def test_the_metrics_table_shows_p_holm_and_effect_without_scrolling(browser, live_server, judged, width, height):
    _, submission = judged
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    tab = context.new_page()
    try:
        log_in(tab, "jules", "judge-pw-1")
        tab.goto(f"/judge/submissions/{submission.pk}/")
        expect(tab.locator("#metrics table")).to_be_visible()
        long_id = tab.locator("#metrics td.test-id code").first
        assert long_id.get_attribute("title")  # the whole id as a tooltip
        overflow = tab.evaluate(METRICS_OVERFLOW)
        assert overflow["page"] <= 0, overflow  # the page never scrolls sideways
        if width >= 1280:
            assert overflow["scroll"] <= 0 and overflow["holm"] <= 0 and overflow["effect"] <= 0, overflow
    finally:
        context.close()


@pytest.mark.parametrize("width, height", [(1280, 800), (375, 740)])
def test_power_warnings_are_one_line_per_group_in_each_tests_unit(browser, live_server, judged, width, height):
    from grading import selectors

    _, submission = judged
    document = selectors.document_of(selectors.measurement_of_record(submission=submission))
    short = [t for t in document["tests"] if t.get("underpowered")]
    assert short, "the small test set leaves some tests short of power"
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    tab = context.new_page()
    try:
        log_in(tab, "jules", "judge-pw-1")
        tab.goto(f"/judge/submissions/{submission.pk}/")
        lines = tab.locator("#metrics ul.warnings li").all_inner_texts()
        assert len(lines) == len(set(lines))  # no line said twice
        power = [line for line in lines if "power to detect a small effect" in line]
        for test in short:  # each short test named in exactly one line, counted in its own unit
            (line,) = [line for line in power if re.search(rf"(^|, | and ){re.escape(test['id'])}( |,)", line)]
            assert re.search(rf"\b{test['n']} {test['unit']}s?\b", line), (test["id"], test["unit"], line)
        # tests of one kind with the same count share a line (group_rate at every ratio, say)
        assert len(power) <= len({(t["n"], t["unit"], t["kind"]) for t in short}) < len(short)
        assert tab.evaluate("document.documentElement.scrollWidth") <= width  # the lines wrap, never widen the page
    finally:
        context.close()
