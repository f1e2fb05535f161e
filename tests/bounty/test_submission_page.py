"""What a participant sees on the submit form and the submission page, state by state."""
import io
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from bounty import errors, states
from bounty.models import Submission
from grading.models import Measurement
from pipeline.models import ProbeRun
from sandbox.probe_files import ZIP_UNSAFE_NAME
from tests.bounty.conftest import move_through
from tests.factories import EXAMPLE_PROBE, challenge_create, submission_create

pytestmark = pytest.mark.django_db


def post_submission(client, challenge, **fields):
    data = {"title": "Contrast wins", "harm_type": "under-representation", "writeup": "",
            "probe": SimpleUploadedFile("probe.py", EXAMPLE_PROBE.read_bytes()), **fields}
    return client.post(reverse("challenge-submit", args=[challenge.slug]), data)


def status(client, submission) -> dict:
    return client.get(reverse("submission-status", args=[submission.pk])).json()


def test_the_challenge_page_explains_rules_model_rubric_quick_start_and_limits(client, challenge):
    challenge.rules = "Be **kind**. <script>alert(1)</script>"
    challenge.closes_at = timezone.now() + timedelta(days=3)
    challenge.save()
    page = client.get(reverse("challenge-detail", args=[challenge.slug])).content.decode()
    assert "<strong>kind</strong>" in page and "<script>alert(1)" not in page
    assert "Hou" in page  # the spectral-residual model card cites its paper
    assert 'id="rubric-card"' in page and "base points" in page
    assert "ImageSetWriter" in page or "PROBE_OUTPUT_DIR" in page
    assert "60 s wall clock" in page and "Deadline:" in page


def test_a_zip_with_a_path_traversal_is_refused_with_a_field_error_and_nothing_is_stored(client, challenge, alice):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("probe.py", "print(1)")
        archive.writestr("../evil.py", "print(2)")
    client.force_login(alice)
    response = post_submission(client, challenge, probe=SimpleUploadedFile("probe.zip", buffer.getvalue()))
    assert response.status_code == 200
    assert response.context["form"].errors["probe"] == [ZIP_UNSAFE_NAME.format(name="../evil.py")]
    assert not Submission.objects.exists()


def test_the_submit_form_stores_the_self_assessment(client, challenge, alice):
    client.force_login(alice)
    response = post_submission(client, challenge, self_justification="Whole groups vanish.", self_rate_clarity="adequate", self_rate_justification="strong")
    submission = Submission.objects.get()
    assert response["Location"] == reverse("submission-detail", args=[submission.pk])
    assert submission.self_assessment == {"harm_type": "under-representation", "justification": "Whole groups vanish.",
                                          "ratings": {"clarity": "adequate", "justification": "strong"}}


def test_after_the_deadline_the_form_says_submissions_are_closed(client, alice):
    late = challenge_create(slug="late", closes_at=timezone.now() - timedelta(minutes=1))
    client.force_login(alice)
    response = post_submission(client, late)
    assert errors.DEADLINE_PASSED.split("(")[0] in response.content.decode()
    assert not Submission.objects.exists()


def test_a_queued_submission_shows_its_position_in_the_queue(client, challenge, alice, bob):
    submission_create(challenge=challenge, participant=bob)
    mine = submission_create(challenge=challenge, participant=alice)
    client.force_login(alice)
    assert status(client, mine)["queue_position"] == 2
    page = client.get(reverse("submission-detail", args=[mine.pk])).content.decode()
    assert "position 2 in the queue" in page and "data-poll" in page


def test_a_running_submission_shows_the_elapsed_time(client, challenge, alice):
    submission = submission_create(challenge=challenge, participant=alice)
    ProbeRun.objects.filter(submission=submission).update(status="running",
                                                          started_at=timezone.now() - timedelta(seconds=42))
    move_through(submission, states.RUNNING)
    client.force_login(alice)
    assert 42 <= status(client, submission)["elapsed_s"] < 600


def test_a_measuring_submission_shows_its_progress(client, measured, alice):
    Measurement.objects.filter(submission=measured).update(status="running", progress_done=7, progress_total=24)
    Submission.objects.filter(pk=measured.pk).update(state=states.MEASURING)
    client.force_login(alice)
    assert status(client, measured)["progress"] == {"done": 7, "total": 24}
    assert "measured 7 of 24 images" in client.get(reverse("submission-detail", args=[measured.pk])).content.decode()


def test_a_failed_probe_shows_the_reason_and_its_stderr(client, challenge, alice):
    submission = submission_create(challenge=challenge, participant=alice)
    ProbeRun.objects.filter(submission=submission).update(
        status="error", exit_code=1, stderr_tail="Traceback ...\nZeroDivisionError: division by zero\n")
    move_through(submission, states.RUNNING)
    move_through(submission, states.FAILED, reason="The probe exited with an error (exit code 1). See its stderr below.")
    client.force_login(alice)
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert "The probe exited with an error (exit code 1)" in page
    assert "ZeroDivisionError: division by zero" in page and "data-poll" not in page
    log = client.get(reverse("submission-log", args=[submission.pk, "stderr"]))
    assert log["Content-Type"].startswith("text/plain") and b"ZeroDivisionError" in log.content


def test_a_platform_error_says_it_is_not_the_participants_fault(client, challenge, alice):
    submission = submission_create(challenge=challenge, participant=alice)
    move_through(submission, states.RUNNING)
    move_through(submission, states.PLATFORM_ERROR, reason="The platform could not run the sandbox (engine down).")
    client.force_login(alice)
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert "does not count against your quota" in page and "engine down" in page


def test_a_measured_submission_shows_metrics_plots_and_the_provisional_score(client, measured, alice):
    client.force_login(alice)
    page = client.get(reverse("submission-detail", args=[measured.pk])).content.decode()
    assert "preference:high>low" in page and 'id="metrics"' in page
    assert reverse("submission-artifact", args=[measured.pk, "contact_sheet"]) in page
    assert 'id="provisional-score"' in page


def test_the_writeup_is_rendered_as_markdown_without_scripts(client, challenge, alice):
    client.force_login(alice)
    post_submission(client, challenge, writeup="# Method\n\n<img src=x onerror=alert(1)> *mild* [x](javascript:alert(1))")
    submission = Submission.objects.get()
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert "<h1>Method</h1>" in page and "<em>mild</em>" in page
    assert "onerror" not in page and "javascript:alert" not in page


def test_cancel_then_resubmit_starts_from_the_same_text(client, challenge, alice):
    client.force_login(alice)
    post_submission(client, challenge, title="First try", writeup="Same words.")
    first = Submission.objects.get()
    client.post(reverse("submission-cancel", args=[first.pk]))
    first.refresh_from_db()
    assert first.state == states.CANCELLED and first.state_reason == "cancelled by the participant"
    form = client.get(reverse("challenge-submit", args=[challenge.slug]) + f"?from={first.pk}").context["form"]
    assert form.initial["title"] == "First try" and form.initial["writeup"] == "Same words."


def test_a_cancelled_submission_does_not_count_against_the_quota(client, alice):
    tight = challenge_create(slug="tight", daily_limit=1)
    client.force_login(alice)
    post_submission(client, tight)
    client.post(reverse("submission-cancel", args=[Submission.objects.get().pk]))
    response = post_submission(client, tight)
    assert response.status_code == 302 and Submission.objects.count() == 2


def test_the_metrics_name_a_preregistered_primary_and_the_confounds(client, measured, alice):
    import json

    measurement = Measurement.objects.get(submission=measured)
    document = json.loads(measurement.document_json)
    document["primary"] = "preference:high>low"
    document["confounds"] = [{"groups": ["high", "low"], "factor": "x",
                              "detail": "high's regions have a median horizontal centre of 0.25 of the image width"}]
    measurement.document_json = json.dumps(document)
    measurement.save(update_fields=["document_json"])
    client.force_login(alice)
    page = client.get(reverse("submission-detail", args=[measured.pk])).content.decode()
    assert '<code id="primary">preference:high>low</code>, tested first at the full alpha of 0.05' in page
    assert "high and low differ in <strong>x</strong>: high&#x27;s regions have a median horizontal centre" in page
