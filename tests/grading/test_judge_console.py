"""The judge console: queue, evidence page, ratings, decisions, thread, artifacts.

Also holds `measured_submission_create`, the setup the console, permission and browser tests
share: a submission walked through the audited state machine to `in_review`, with a real run
of the example probe's image set and a real measurement. TEST_FIXTURE_METRICS_DOCUMENT is a
hand-written input for the rubric-gating cases only (the judge UI is under test there).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from html import escape
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse
from django.urls.resolvers import RoutePattern, URLResolver
from django.utils import timezone
from PIL import Image

import blobs
from bounty import selectors as bounty_selectors
from bounty import services as bounty_services
from bounty import states
from bounty.models import Challenge, Submission
from bounty.permissions import HIDDEN_NAME
from grading import selectors as grading_selectors
from grading.models import Measurement
from grading.services import score_provisional_create
from pipeline import queue as pipeline_queue
from pipeline.models import ImageSet, ProbeRun
from review import selectors, services
from review.models import Review, ReviewAssignment, SubmissionComment
from review.views import participant_thread_reply
from tests.factories import EXAMPLE_PROBE, ROOT, user_create

# A hand-made metrics document, for tests that need exact values rather than a measured set.
TEST_FIXTURE_METRICS_DOCUMENT = {
    "schema": 1, "model": "spectral-residual", "model_version": "test", "seed": 0,
    "tests": [
        {"id": "preference:high>low", "kind": "preference", "variant": None, "ratio": None, "groups": ["high", "low"],
         "n": 24, "n_neither": 0, "estimate": 0.9167, "ci": [0.742, 0.977], "parity_gap": 0.4167,
         "p_value": 0.00003, "p_holm": 0.00012, "effect_size": 0.9851},
        {"id": "position:first>second", "kind": "position", "variant": None, "ratio": None, "groups": ["first", "second"],
         "n": 24, "n_neither": 0, "estimate": 0.5, "ci": [0.314, 0.686], "p_value": 1.0, "p_holm": 1.0, "effect_size": 0.0},
    ],
    "groups": {}, "generalization": {}, "warnings": [],
}


def challenge_for_tests(*, slug: str = "judged", judges=(), organizers=(), **fields) -> Challenge:
    """An open challenge on the fast spectral-residual model."""
    defaults = dict(title=f"Challenge {slug}", state=states.OPEN, model_name="spectral-residual",
                    model_version="test", measure_generalization=False)
    defaults.update(fields)
    challenge = Challenge.objects.create(slug=slug, **defaults)
    challenge.judges.add(*judges)
    challenge.organizers.add(*organizers)
    return challenge


def _example_image_set() -> Path:
    """Run the project's own example probe (trusted, unsandboxed) into a fresh run directory."""
    out = Path(settings.RUNS_DIR) / f"test-{uuid.uuid4().hex[:12]}" / "out"
    out.mkdir(parents=True)
    subprocess.run([sys.executable, str(EXAMPLE_PROBE)], cwd=out, env=dict(os.environ, PROBE_OUTPUT_DIR=str(out), PYTHONPATH=str(ROOT)),
                   check=True, capture_output=True, timeout=120)
    return out


def _measure(set_dir: Path, *, challenge: Challenge, measurement_id: int, probe_sha256: str) -> str:
    from grading.measurement import document_dumps, measure_image_set

    with blobs.writing_tree(grading_selectors.artifacts_key(measurement_id=measurement_id)) as artifacts:
        document = measure_image_set(
            set_dir, model=challenge.model_name, ratios=list(challenge.aspect_ratios), seed=0,
            probe_sha256=probe_sha256, generalization=False, artifacts_dir=artifacts,
        )
    return document_dumps(document)


def measured_submission_create(*, challenge: Challenge, participant, title: str = "High contrast wins the crop",
                               harm_type: str = "under-representation", document: dict | None = None) -> Submission:
    """A submission in `in_review`, reached through the audited transitions, with run, image set,
    measurement and provisional score. `document` replaces the measurement when given."""
    content = EXAMPLE_PROBE.read_bytes()
    submission = Submission(
        challenge=challenge, participant=participant, title=title, probe_name=EXAMPLE_PROBE.name,
        probe_sha256="sha256:" + hashlib.sha256(content).hexdigest(), writeup="The crop keeps the busier subject.",
        self_assessment={"harm_type": harm_type, "justification": "24 of 24 composites, both orders."},
        harm_type=harm_type,
    )
    submission.probe.save(EXAMPLE_PROBE.name, ContentFile(content), save=False)
    submission.save()
    move = bounty_services.submission_transition
    move(submission_id=submission.pk, from_states=(states.SUBMITTED,), to_state=states.SUBMITTED, reason="submitted", actor=participant)
    move(submission_id=submission.pk, from_states=(states.SUBMITTED,), to_state=states.QUEUED, reason="waiting for a sandbox worker")
    run = ProbeRun.objects.create(submission=submission, backend="bwrap", status="running", started_at=timezone.now())
    move(submission_id=submission.pk, from_states=(states.QUEUED,), to_state=states.RUNNING, reason="the probe is running")
    set_dir = _example_image_set()
    manifest = (set_dir / "manifest.json").read_bytes()
    ProbeRun.objects.filter(pk=run.pk).update(
        status="ok", exit_code=0, wall_s=1.5, stdout_tail="wrote 24 composites to out\n",
        stderr_tail="warning: a test stderr line\n", finished_at=timezone.now(),
    )
    image_set = ImageSet.objects.create(
        run=run, path=str(set_dir.resolve().relative_to(settings.VAR_DIR)), n_images=24,
        title="High-contrast vs low-contrast subject in one image", attribute="contrast", groups=["high", "low"],
        manifest_sha256="sha256:" + hashlib.sha256(manifest).hexdigest(),
    )
    move(submission_id=submission.pk, from_states=(states.RUNNING,), to_state=states.MEASURING, reason="measuring")
    measurement = Measurement.objects.create(
        submission=submission, image_set=image_set, model_name=challenge.model_name, status="running",
        probe_sha256=submission.probe_sha256, manifest_sha256=image_set.manifest_sha256,
    )
    text = json.dumps(document, sort_keys=True) if document is not None else _measure(
        set_dir, challenge=challenge, measurement_id=measurement.pk, probe_sha256=submission.probe_sha256)
    Measurement.objects.filter(pk=measurement.pk).update(
        status="done", document_json=text, document_sha256="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
        finished_at=timezone.now(),
    )
    move(submission_id=submission.pk, from_states=(states.MEASURING,), to_state=states.MEASURED, reason="measured")
    score = score_provisional_create(submission=submission, document=json.loads(text))
    move(submission_id=submission.pk, from_states=(states.MEASURED,), to_state=states.IN_REVIEW, reason="waiting for the judges",
         provisional_score=score.value)
    submission.refresh_from_db()
    return submission


# The participant's thread reply as bounty's URLs would mount it (used with @pytest.mark.urls).
urlpatterns = [
    path("submissions/<int:submission_id>/thread/", participant_thread_reply, name="submission-thread"),
    URLResolver(RoutePattern(""), "config.urls"),  # imported when first resolved, not at collection
]

HALT_RATINGS = {
    "harm_type": "mis-recognition", "rate_identity_axes": "single_marginalised", "rate_wellbeing": "moderate",
    "rate_affected_users": "over_1m", "rate_likelihood": "monthly", "rate_justification": "none",
    "rate_clarity": "unclear", "rate_creativity": "c10",
}
STRONG_RATINGS = {
    "harm_type": "under-representation", "rate_identity_axes": "several", "rate_wellbeing": "moderate",
    "rate_affected_users": "about_1b", "rate_likelihood": "frequent", "rate_justification": "strong",
    "rate_clarity": "adequate", "rate_creativity": "c10",
}
WHY = {f"why_{f}": f"Because of the evidence on {f}." for f in
       ("damage", "affected_users", "likelihood", "exploitability", "justification", "clarity", "creativity")}


def ratings_of(form: dict) -> tuple[str, dict, dict]:
    ratings = {k[5:]: v for k, v in form.items() if k.startswith("rate_")}
    why = {k[4:]: v for k, v in form.items() if k.startswith("why_")}
    return form["harm_type"], ratings, why


@pytest.fixture
def people(db):
    return {"alice": user_create("alice"), "bob": user_create("bob"), "jules": user_create("jules"),
            "kim": user_create("kim"), "olga": user_create("olga")}


@pytest.fixture
def judged(people):
    challenge = challenge_for_tests(judges=[people["jules"], people["kim"]], organizers=[people["olga"]])
    submission = measured_submission_create(challenge=challenge, participant=people["alice"])
    return challenge, submission


def test_judge_page_shows_the_evidence_and_hides_the_participant(client, people, judged):
    _, submission = judged
    client.force_login(people["jules"])
    page = client.get(reverse("judge-submission", args=[submission.pk])).content.decode()
    assert HIDDEN_NAME in page and "alice" not in page
    assert '<div class="highlight">' in page and "subject" in page  # Pygments-highlighted probe source
    assert "wrote 24 composites to out" in page and "a test stderr line" in page
    assert "High-contrast vs low-contrast subject in one image" in page and "Regions per group" in page
    document = json.loads(submission.measurements.get().document_json)
    assert escape(document["tests"][0]["id"]) in page
    assert "24 of 24 composites, both orders." in page  # self-assessment beside the form
    assert 'data-preview-url="' in page and "20 × 3.042 = 60.84" in page
    assert "waiting for the judges" in page  # audit trail


def test_a_judges_rating_is_scored_by_the_engine_not_the_browser(client, people, judged):
    _, submission = judged
    client.force_login(people["jules"])
    response = client.post(reverse("judge-review", args=[submission.pk]), {**HALT_RATINGS, **WHY, "score": "999"})
    assert response.status_code == 302
    review = Review.objects.get(submission=submission, judge=people["jules"])
    assert review.score == 17.82
    assert review.justifications["clarity"] == "Because of the evidence on clarity."
    assert ReviewAssignment.objects.filter(submission=submission, judge=people["jules"]).exists()


def test_a_rating_without_a_justification_is_refused_with_the_factor_named(client, people, judged):
    _, submission = judged
    client.force_login(people["jules"])
    why = {k: v for k, v in WHY.items() if k != "why_clarity"}
    response = client.post(reverse("judge-review", args=[submission.pk]), {**HALT_RATINGS, **why})
    assert response.status_code == 400
    assert services.JUSTIFY_FACTOR.format(factor="clarity") in response.content.decode()
    assert not Review.objects.filter(submission=submission).exists()


def test_an_unsubstantiated_finding_has_justification_capped_and_flagged(people):
    challenge = challenge_for_tests(judges=[people["jules"]])
    document = {**TEST_FIXTURE_METRICS_DOCUMENT,
                "tests": [dict(t, p_holm=0.2) for t in TEST_FIXTURE_METRICS_DOCUMENT["tests"]]}
    submission = measured_submission_create(challenge=challenge, participant=people["alice"], document=document)
    harm, ratings, why = ratings_of({**STRONG_RATINGS, **WHY})
    review = services.review_save(submission=submission, judge=people["jules"], harm_type=harm, ratings=ratings, justifications=why)
    assert review.score == round(20 * 1.3 * 1.3 * 1.2 * 1.0, 2)  # justification ×1.5 capped at ×1.0


def test_several_judges_are_aggregated_by_median_and_disagreement_is_flagged(client, people, judged):
    challenge, submission = judged
    for judge, form in ((people["jules"], HALT_RATINGS), (people["kim"], STRONG_RATINGS)):
        harm, ratings, why = ratings_of({**form, **WHY})
        services.review_save(submission=submission, judge=judge, harm_type=harm, ratings=ratings, justifications=why)
    client.force_login(people["olga"])
    queue = client.get(reverse("judge-queue"), {"challenge": challenge.slug, "disagreement": "1"}).content.decode()
    assert submission.title in queue and "disagreement" in queue
    assert "39.33" in queue  # median of 17.82 and 60.84
    page = client.get(reverse("judge-submission", args=[submission.pk])).content.decode()
    assert 'id="disagreement"' in page


def test_queue_filters_by_assignment_and_runs_a_fixed_number_of_queries(client, people, judged):
    challenge, first = judged
    client.force_login(people["kim"])
    with CaptureQueriesContext(connection) as one_row:
        client.get(reverse("judge-queue"))
    for i in range(4):
        measured_submission_create(challenge=challenge, participant=people["bob"], title=f"Other finding {i}",
                                   document=TEST_FIXTURE_METRICS_DOCUMENT)
    services.review_assign(submission=first, judge=people["kim"], assigned_by=people["olga"])
    with CaptureQueriesContext(connection) as five_rows:
        page = client.get(reverse("judge-queue")).content.decode()
    assert len(five_rows.captured_queries) == len(one_row.captured_queries)
    assert page.count("Other finding") == 4
    mine = client.get(reverse("judge-queue"), {"mine": "1"}).content.decode()
    assert first.title in mine and "Other finding" not in mine


def test_accepting_then_publishing_puts_the_median_on_the_leaderboard(client, people, judged):
    challenge, submission = judged
    for judge, form in ((people["jules"], HALT_RATINGS), (people["kim"], STRONG_RATINGS)):
        harm, ratings, why = ratings_of({**form, **WHY})
        services.review_save(submission=submission, judge=judge, harm_type=harm, ratings=ratings, justifications=why)
    client.force_login(people["jules"])
    client.post(reverse("judge-decide", args=[submission.pk]), {"decision": "accepted", "reason": "Clear and measured."})
    submission.refresh_from_db()
    assert submission.state == states.ACCEPTED and submission.final_score == 39.33
    client.post(reverse("judge-publish", args=[submission.pk]))
    submission.refresh_from_db()
    assert submission.state == states.PUBLISHED and submission.final_score == 39.33
    last = list(submission.events.values_list("from_state", "to_state", "actor__username", "reason"))[-2:]
    assert last == [(states.IN_REVIEW, states.ACCEPTED, "jules", "Clear and measured."),
                    (states.ACCEPTED, states.PUBLISHED, "jules", "published")]
    page = client.get(reverse("judge-submission", args=[submission.pk])).content.decode()
    assert "alice" in page  # identity shown once decided
    board = client.get(reverse("leaderboard", args=[challenge.slug])).content.decode()
    assert "39.33" in board


def test_a_decision_needs_a_reason(client, people, judged):
    _, submission = judged
    client.force_login(people["jules"])
    response = client.post(reverse("judge-decide", args=[submission.pk]), {"decision": "out_of_scope", "reason": ""}, follow=True)
    assert services.REASON_REQUIRED in response.content.decode()
    submission.refresh_from_db()
    assert submission.state == states.IN_REVIEW


def test_a_duplicate_links_its_earlier_original_and_never_a_later_one(people, judged):
    challenge, original = judged
    later = measured_submission_create(challenge=challenge, participant=people["bob"], title="Same thing again")
    hints = selectors.duplicate_candidates(submission=later, document=json.loads(later.measurements.get().document_json))
    assert [h["submission"].pk for h in hints] == [original.pk]
    assert hints[0]["same_attribute"]
    with pytest.raises(services.BountyError) as refused:
        services.submission_decide(submission=original, judge=people["jules"], decision=states.DUPLICATE,
                                   reason="Same finding.", duplicate_of_id=later.pk)
    assert refused.value.message == services.DUPLICATE_NOT_EARLIER.format(original=later.pk)
    services.submission_decide(submission=later, judge=people["jules"], decision=states.DUPLICATE,
                               reason="Same finding.", duplicate_of_id=original.pk)
    later.refresh_from_db()
    assert later.state == states.DUPLICATE and later.duplicate_of_id == original.pk
    assert later.events.last().reason == f"Same finding. (duplicate of #{original.pk})"


@pytest.mark.parametrize("decision", [states.NOT_REPRODUCIBLE, states.OUT_OF_SCOPE])
def test_rejecting_decisions_are_audited_and_can_be_reopened(people, judged, decision):
    _, submission = judged
    services.submission_decide(submission=submission, judge=people["kim"], decision=decision, reason="Cannot see it.")
    submission.refresh_from_db()
    assert submission.state == decision
    services.submission_reopen(submission=submission, judge=people["jules"], reason="New evidence.")
    submission.refresh_from_db()
    assert submission.state == states.IN_REVIEW
    moves = list(submission.events.values_list("to_state", "actor__username"))[-2:]
    assert moves == [(decision, "kim"), (states.IN_REVIEW, "jules")]


@pytest.mark.urls(__name__)
def test_needs_info_opens_a_thread_the_participant_answers(client, people, judged):
    _, submission = judged
    services.submission_decide(submission=submission, judge=people["jules"], decision=states.NEEDS_INFO,
                               reason="Which faces did you use?")
    services.comment_create(submission=submission, author=people["kim"], body="Judges only: looks fine.")
    thread = list(bounty_selectors.thread_for_participant(submission=submission).values_list("body", flat=True))
    assert thread == ["Which faces did you use?"]
    with pytest.raises(services.BountyError):
        services.thread_reply(submission=submission, participant=people["bob"], body="Not mine to answer.")
    client.force_login(people["alice"])
    response = client.post(reverse("submission-thread", args=[submission.pk]), {"body": "Synthetic tiles, no faces."})
    assert response.status_code == 302
    submission.refresh_from_db()
    assert submission.state == states.IN_REVIEW
    client.force_login(people["jules"])
    page = client.get(reverse("judge-submission", args=[submission.pk])).content.decode()
    assert "Synthetic tiles, no faces." in page and "Judges only: looks fine." in page and "alice" not in page


def test_a_declared_conflict_stops_the_judge_rating_and_does_not_count(people, judged):
    _, submission = judged
    harm, ratings, why = ratings_of({**STRONG_RATINGS, **WHY})
    services.review_save(submission=submission, judge=people["jules"], harm_type=harm, ratings=ratings, justifications=why)
    services.review_declare_conflict(submission=submission, judge=people["jules"], note="I coached the team.")
    with pytest.raises(services.BountyError) as refused:
        services.review_save(submission=submission, judge=people["jules"], harm_type=harm, ratings=ratings, justifications=why)
    assert refused.value.message == services.CONFLICT_DECLARED
    from grading.rubric import final_score

    assert final_score(reviews=submission.reviews.all(), provisional=submission.provisional_score) == submission.provisional_score


def test_agreement_across_a_challenge_is_krippendorffs_alpha(client, people, judged):
    challenge, first = judged
    second = measured_submission_create(challenge=challenge, participant=people["bob"], title="Second",
                                        document=TEST_FIXTURE_METRICS_DOCUMENT)
    for submission, forms in ((first, (HALT_RATINGS, HALT_RATINGS)), (second, (STRONG_RATINGS, STRONG_RATINGS))):
        for judge, form in zip((people["jules"], people["kim"]), forms):
            harm, ratings, why = ratings_of({**form, **WHY})
            services.review_save(submission=submission, judge=judge, harm_type=harm, ratings=ratings, justifications=why)
    agreement = selectors.challenge_agreement(challenge=challenge)
    assert agreement["score_alpha"] == pytest.approx(1.0)  # identical scores: perfect agreement
    client.force_login(people["olga"])
    page = client.get(reverse("judge-queue"), {"challenge": challenge.slug, "state": ""}).content.decode()
    assert "Krippendorff" in page and "1.000" in page


def test_measurement_artifacts_are_served_to_judges_only(client, people, judged):
    _, submission = judged
    measurement = submission.measurements.get()
    directory = blobs.local_path(grading_selectors.artifacts_key(measurement_id=measurement.pk))
    directory.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(directory / "contact-sheet.png")
    url = reverse("judge-artifact", args=[submission.pk, measurement.pk, "contact-sheet.png"])
    client.force_login(people["jules"])
    assert url in client.get(reverse("judge-submission", args=[submission.pk])).content.decode()
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert client.get(reverse("judge-artifact", args=[submission.pk, measurement.pk, "..secret.png"])).status_code == 404
    client.force_login(people["alice"])
    assert client.get(url).status_code == 404


def test_a_judge_comment_to_the_participant_joins_the_thread(people, judged):
    _, submission = judged
    services.comment_create(submission=submission, author=people["jules"], body="Please add the seed.", to_participant=True)
    services.comment_create(submission=submission, author=people["jules"], body="Internal note.")
    assert SubmissionComment.objects.filter(submission=submission).count() == 2
    assert [c.body for c in bounty_selectors.thread_for_participant(submission=submission)] == ["Please add the seed."]


def test_the_live_score_preview_comes_from_the_engine(client, people, judged):
    _, submission = judged
    client.force_login(people["jules"])
    url = reverse("judge-score-preview", args=[submission.pk])
    preview = client.post(url, HALT_RATINGS).json()
    assert preview["score"] == "17.82" and "= 17.82" in preview["formula"]
    assert "likelihood" in preview["applicable"] and "exploitability" not in preview["applicable"]
    partial = client.post(url, {k: v for k, v in HALT_RATINGS.items() if k != "rate_clarity"}).json()
    assert partial["score"] is None and partial["formula"].startswith("rate: ")
    client.force_login(people["alice"])  # the participant: the console does not exist for her
    assert client.post(url, HALT_RATINGS).status_code == 404


def test_a_judges_comment_past_its_cap_is_refused_and_nothing_is_saved(client, people, judged):
    from review.forms import MAX_COMMENT_CHARS

    _, submission = judged
    client.force_login(people["jules"])
    response = client.post(reverse("judge-review", args=[submission.pk]),
                           {**HALT_RATINGS, **WHY, "comment": "x" * (MAX_COMMENT_CHARS + 1)}, follow=True)
    assert f"at most {MAX_COMMENT_CHARS}" in response.content.decode()
    assert not Review.objects.filter(submission=submission).exists()


def rerun_finished(*, submission: Submission) -> Measurement:
    """A re-run of the measurement of record, walked as the pipeline does: a queued re-run probe
    run, then (after the probe) a measurement claimed and stored with the same document."""
    from grading import services as grading_services

    original = grading_selectors.measurement_of_record(submission=submission)
    run = ProbeRun.objects.create(submission=submission, backend="bwrap", details={"rerun_of": original.pk})
    ProbeRun.objects.filter(pk=run.pk).update(status="ok", exit_code=0, finished_at=timezone.now())
    rerun = grading_services.measurement_create(submission=submission, image_set=original.image_set, rerun_of_id=original.pk)
    assert grading_services.measurement_claim(measurement_id=rerun.pk, holder="test", ttl_s=60)
    assert grading_services.measurement_store(measurement_id=rerun.pk, holder="test", text=original.document_json,
                                              model_version=original.model_version)
    return rerun


def test_a_refused_decision_lands_at_its_field_with_the_message_inside_the_decision_form(client, people, judged):
    _, submission = judged
    client.force_login(people["jules"])
    response = client.post(reverse("judge-decide", args=[submission.pk]), {"decision": "accepted", "reason": " "})
    assert response.status_code == 302 and response["Location"].endswith(f"/judge/submissions/{submission.pk}/#decision")
    page = client.get(response["Location"]).content.decode()
    section = page[page.index('id="decision"'):page.index('id="comments"')]
    assert services.REASON_REQUIRED in section and 'id="decision-reason-error"' in section
    assert 'id="decision-reason" rows="2" aria-invalid="true" aria-describedby="decision-reason-error"' in section
    assert services.REASON_REQUIRED not in page[:page.index('id="decision"')]  # shown once, at its field
    response = client.post(reverse("judge-decide", args=[submission.pk]), {"decision": "duplicate", "reason": "Same."})
    section = client.get(response["Location"]).content.decode()
    assert 'id="duplicate_of-error"' in section and services.DUPLICATE_NEEDS_ORIGINAL in section


def test_a_refused_rating_marks_the_factor_it_is_about(client, people, judged):
    _, submission = judged
    client.force_login(people["jules"])
    why = {k: v for k, v in WHY.items() if k != "why_damage"}
    page = client.post(reverse("judge-review", args=[submission.pk]), {**HALT_RATINGS, **why}).content.decode()
    assert 'id="why_damage-error"' in page and services.JUSTIFY_FACTOR.format(factor="damage") in page
    assert 'fieldset data-factor="damage" data-applies-to="any" class="invalid"' in page
    assert 'aria-describedby="why_clarity-error"' not in page


def test_the_writeup_is_sanitised_markdown_and_the_self_assessment_reads_as_sentences(client, people, judged):
    _, submission = judged
    Submission.objects.filter(pk=submission.pk).update(
        writeup="## Method\n\nThe *busier* subject wins.\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2))",
        self_assessment={"harm_type": "under-representation", "justification": "Both orders agree.",
                         "ratings": {"wellbeing": "moderate", "made_up": "<b>odd</b>"}},
    )
    client.force_login(people["jules"])
    page = client.get(reverse("judge-submission", args=[submission.pk])).content.decode()
    writeup = page[page.index('id="writeup"'):page.index('id="manifest"')]
    assert "<h2>Method</h2>" in writeup and "<em>busier</em>" in writeup
    assert "<script>" not in writeup and "javascript:" not in writeup
    sa = page[page.index('id="self-assessment"'):page.index('id="rubric"')]
    assert "Harm type: <strong>Under-representation</strong>" in sa
    assert "Damage — Well-being: Moderate (×1.2)" in sa
    assert "made_up: &lt;b&gt;odd&lt;/b&gt;" in sa and "Why: Both orders agree." in sa
    assert "ratings: {" not in sa


def test_rerun_json_follows_a_rerun_from_queued_to_its_comparison(client, people, judged):
    _, submission = judged
    client.force_login(people["jules"])
    url = reverse("judge-rerun-status", args=[submission.pk])
    assert url == f"/judge/submissions/{submission.pk}/rerun.json"
    assert client.get(url).json() == {"status": "none", "done": False, "identical": None,
                                      "html": '\n<div id="rerun-result">\n\n</div>\n'}
    pipeline_queue.submission_rerun(submission=submission, actor=people["jules"])
    queued = client.get(url).json()
    assert (queued["status"], queued["done"]) == ("queued", False) and 'data-pending="1"' in queued["html"]
    ProbeRun.objects.filter(submission=submission, details__has_key="rerun_of").delete()
    rerun_finished(submission=submission)
    done = client.get(url).json()
    assert (done["status"], done["done"], done["identical"]) == ("done", True, True)
    assert 'id="rerun-table"' in done["html"] and "data-pending" not in done["html"]
    other = user_create("stranger")
    client.force_login(other)
    assert client.get(url).status_code == 404


def test_plots_widen_with_the_number_of_tests_and_the_contact_sheet_has_a_legend(tmp_path):
    from grading.measurement import measure_image_set
    from probekit.synthetic import contrast_composites, textured_square
    from probekit.writer import ImageSetWriter

    groups = ["g1", "g2", "g3", "g4", "g5"]
    with ImageSetWriter(tmp_path / "five", title="Five groups", attribute="x", groups=groups) as writer:
        for k in range(20):
            a, b = groups[k % 5], groups[(k + 1 + k // 5) % 5]
            canvas = Image.new("RGB", (160, 84), (128, 128, 128))
            canvas.paste(textured_square(64, k), (10, 10))
            canvas.paste(textured_square(64, k + 99), (86, 10))
            writer.add(canvas, id=f"c{k:03d}", regions=[(a, (10, 10, 64, 64)), (b, (86, 10, 64, 64))])
    sizes = {}
    for name, set_dir in (("two", contrast_composites(tmp_path / "two")), ("five", tmp_path / "five")):
        document = measure_image_set(set_dir, model="spectral-residual", seed=0, artifacts_dir=tmp_path / f"{name}-art")
        sizes[name] = {p.name: Image.open(p).size for p in (tmp_path / f"{name}-art").glob("*.png")}
        sizes[name]["tests"] = len(document["tests"])
    assert sizes["five"]["tests"] > 4 * sizes["two"]["tests"]
    assert sizes["five"]["group_rates.png"][0] > 2 * sizes["two"]["group_rates.png"][0]
    assert sizes["five"]["preference.png"][0] > sizes["two"]["preference.png"][0]
    sheet = Image.open(tmp_path / "five-art" / "contact_sheet.png").convert("RGB")
    legend = sheet.crop((0, sheet.height - 70, sheet.width, sheet.height))
    colours = {colour for _, colour in legend.getcolors(maxcolors=100_000)}
    assert (0x15, 0x65, 0xC0) in colours and (0xEF, 0x6C, 0x00) in colours  # group 1 and group 5 boxes
    assert (0xFF, 0x17, 0x44) in colours  # the salient point's dot
