"""Stable identifiers, the AVID export, and coordinated disclosure (embargo, the organizer's response)."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from bounty import errors, services, states
from bounty.errors import BountyError
from bounty.models import Challenge, Submission, SubmissionEvent
from grading.models import Measurement
from pipeline.tasks import release_embargoed_findings
from review.services import submission_decide, submission_publish
from tests.bounty.conftest import publish
from tests.factories import user_create
from tests.grading.test_judge_console import measured_submission_create

pytestmark = pytest.mark.django_db

SCHEMA = json.loads((Path(settings.BASE_DIR) / "bounty" / "avid_report.schema.json").read_text())
IDENTIFIER = re.compile(r"^CB-(\d{4})-(\d{4,})$")


@pytest.fixture
def judge(challenge):
    user = user_create("jules")
    challenge.judges.add(user)
    return user


@pytest.fixture
def embargoed(challenge, measured, judge):
    """Alice's finding accepted by a judge on a challenge with a 30-day embargo."""
    Challenge.objects.filter(pk=challenge.pk).update(embargo=timedelta(days=30))
    measured.challenge.refresh_from_db()
    submission_decide(submission=measured, judge=judge, decision=states.ACCEPTED, reason="holds on both orders")
    measured.refresh_from_db()
    return measured


# --- identifiers ---------------------------------------------------------------------------------


def test_a_published_finding_gets_one_identifier_in_order(client, challenge, alice, measured, judge):
    second = measured_submission_create(challenge=challenge, participant=alice, title="Second finding")
    publish(measured, judge=judge)
    publish(second, judge=judge)
    first_id, second_id = IDENTIFIER.match(measured.finding_identifier), IDENTIFIER.match(second.finding_identifier)
    assert first_id and second_id and int(first_id.group(1)) == timezone.now().year
    assert int(second_id.group(2)) == int(first_id.group(2)) + 1
    page = client.get(reverse("finding-detail", args=[measured.pk])).content.decode()
    assert f'<span id="finding-identifier">{measured.finding_identifier}</span>' in page


def test_an_unpublished_submission_has_no_identifier(measured):
    assert measured.finding_identifier is None


# --- AVID export ---------------------------------------------------------------------------------


def test_the_avid_export_follows_the_schema_and_carries_the_document(client, measured, judge):
    publish(measured, judge=judge)
    response = client.get(reverse("finding-avid", args=[measured.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    report = response.json()
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(report)
    document = json.loads(Measurement.objects.get(submission=measured).document_json)
    assert report["metadata"]["report_id"] == measured.finding_identifier
    assert report["affects"]["artifacts"][0] == {"type": "Model", "name": f"spectral-residual (version {document['model_version']})"}
    assert "under-representation" in report["problemtype"]["description"]["value"]
    assert [m["name"] for m in report["metrics"]] == [t["id"] for t in document["tests"]]
    assert report["metrics"][0]["results"]["p_holm"] == document["tests"][0]["p_holm"]
    urls = [r["url"] for r in report["references"]]
    assert "http://testserver" + reverse("finding-bundle", args=[measured.pk]) in urls
    api = client.get(reverse("api-finding-avid", args=[measured.pk])).json()
    assert api == report


def test_the_schema_rejects_a_report_without_affects(client, measured, judge):
    publish(measured, judge=judge)
    report = client.get(reverse("finding-avid", args=[measured.pk])).json()
    del report["affects"]
    with pytest.raises(jsonschema.ValidationError, match="'affects' is a required property"):
        jsonschema.validate(report, SCHEMA)


def test_an_unpublished_finding_has_no_avid_report(client, measured):
    assert client.get(reverse("finding-avid", args=[measured.pk])).status_code == 404
    assert client.get(reverse("api-finding-avid", args=[measured.pk])).status_code == 404


# --- embargo -------------------------------------------------------------------------------------


def test_acceptance_starts_the_clock_and_the_participant_sees_it(client, embargoed):
    expected = timezone.now() + timedelta(days=30)
    assert abs((embargoed.embargo_until - expected).total_seconds()) < 120
    client.force_login(embargoed.participant)
    page = client.get(reverse("submission-detail", args=[embargoed.pk])).content.decode()
    assert 'id="embargo"' in page and "under the challenge's disclosure embargo until" in page
    assert "left)" in page  # how long is left
    api = client.get(reverse("api-submission-detail", args=[embargoed.pk])).json()
    assert api["embargo_until"] == embargoed.embargo_until.isoformat() and api["bundle_url"] is None


def test_a_judge_cannot_publish_during_the_embargo(embargoed, judge):
    with pytest.raises(BountyError, match="embargoes accepted findings until"):
        submission_publish(submission=embargoed, judge=judge)
    embargoed.refresh_from_db()
    assert embargoed.state == states.ACCEPTED and embargoed.finding_identifier is None


def test_a_judge_publishing_from_review_is_told_to_accept_instead(challenge, measured, judge):
    Challenge.objects.filter(pk=challenge.pk).update(embargo=timedelta(days=7))
    measured.challenge.refresh_from_db()
    with pytest.raises(BountyError) as error:
        submission_publish(submission=measured, judge=judge)
    assert error.value.message == errors.EMBARGOED_ON_ACCEPT
    measured.refresh_from_db()
    assert measured.state == states.IN_REVIEW


def test_nothing_is_released_before_the_embargo_ends(embargoed):
    assert services.findings_release_due(now=timezone.now() + timedelta(days=29)) == []
    embargoed.refresh_from_db()
    assert embargoed.state == states.ACCEPTED


def test_the_embargo_ending_publishes_through_the_one_path(embargoed):
    Submission.objects.filter(pk=embargoed.pk).update(final_score=None)  # the release computes it
    assert services.findings_release_due(now=timezone.now() + timedelta(days=31)) == [embargoed.pk]
    embargoed.refresh_from_db()
    assert embargoed.state == states.PUBLISHED and embargoed.final_score is not None
    assert IDENTIFIER.match(embargoed.finding_identifier)
    event = SubmissionEvent.objects.filter(submission=embargoed, to_state=states.PUBLISHED).get()
    assert event.actor is None and event.reason == "published: the disclosure embargo ended"


def test_the_periodic_task_is_scheduled_and_releases_due_findings(embargoed):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "pipeline.tasks.release_embargoed_findings" in scheduled
    Submission.objects.filter(pk=embargoed.pk).update(embargo_until=timezone.now() - timedelta(seconds=1))
    assert release_embargoed_findings.apply().get() == [embargoed.pk]
    embargoed.refresh_from_db()
    assert embargoed.state == states.PUBLISHED


def test_the_organizers_response_publishes_early_and_shows_on_the_page(client, embargoed):
    organizer = user_create("olga")
    services.submission_respond(submission=embargoed, response="fixed", version="2.1", actor=organizer)
    embargoed.refresh_from_db()
    assert embargoed.state == states.PUBLISHED and embargoed.vendor_responded_at is not None
    event = SubmissionEvent.objects.filter(submission=embargoed, to_state=states.PUBLISHED).get()
    assert event.actor == organizer and "organizer responded" in event.reason
    page = client.get(reverse("finding-detail", args=[embargoed.pk])).content.decode()
    assert '<strong id="vendor-response">fixed in version 2.1</strong>' in page


@pytest.mark.parametrize("response, version, note, message", [
    ("fixed", "", "", errors.RESPONSE_NEEDS_VERSION),
    ("wont_fix", "", "", errors.RESPONSE_NEEDS_NOTE),
    ("shrug", "", "", "Unknown response 'shrug'"),
])
def test_a_response_must_say_what_it_means(embargoed, response, version, note, message):
    with pytest.raises(BountyError, match=re.escape(message)):
        services.submission_respond(submission=embargoed, response=response, version=version, note=note)
    embargoed.refresh_from_db()
    assert embargoed.state == states.ACCEPTED and embargoed.vendor_response == ""


def test_the_admin_records_a_wont_fix_and_publishes(client, embargoed):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser("root", "root@example.org", "pw-for-tests-1")
    client.force_login(admin_user)
    url = reverse("admin:bounty_submission_change", args=[embargoed.pk])
    page = client.get(url)
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, datetime):  # the admin's split date and time inputs
            local = timezone.localtime(value)
            data[f"{name}_0"], data[f"{name}_1"] = local.date().isoformat(), local.time().isoformat()
        elif value is not None and name != "probe":
            data[name] = value
    data.update({"vendor_response": "wont_fix", "vendor_response_note": ""})
    data.update({f"events-{k}": v for k, v in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))})
    refused = client.post(url, data)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {"vendor_response_note": [errors.RESPONSE_NEEDS_NOTE]}
    data["vendor_response_note"] = "the crop is a documented product decision"
    accepted = client.post(url, data)
    assert accepted.status_code == 302, accepted.context["adminform"].form.errors
    embargoed.refresh_from_db()
    assert embargoed.state == states.PUBLISHED
    page = client.get(reverse("finding-detail", args=[embargoed.pk])).content.decode()
    assert "won&#x27;t fix" in page and "the crop is a documented product decision" in page
