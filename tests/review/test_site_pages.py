"""Pages that read well: the favicon, the 404 and 500 pages, the submit form's harm choice, when
"Resubmit" shows, and one progress count from the start of a measurement."""
from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import override_settings
from django.urls import reverse

from bounty import states
from bounty.models import Submission
from grading.models import Measurement
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return user_create("alice")


@pytest.fixture
def challenge():
    return challenge_create(slug="pages")


def test_every_page_links_the_favicon(client):
    page = client.get(reverse("home")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page


@override_settings(DEBUG=False)
def test_an_unknown_address_gets_the_sites_own_404_page(client):
    response = client.get("/no/such/page/<b>x</b>")
    assert response.status_code == 404
    page = response.content.decode()
    assert 'id="not-found"' in page and "Page not found" in page and 'href="/static/css/site.css"' in page
    assert "<b>x</b>" not in page


def test_the_500_page_renders_without_a_request():
    page = render_to_string("500.html")  # Django's server_error view gives it no request context
    assert 'id="server-error"' in page and "Something broke on our side" in page and "Log in" in page


def test_the_submit_form_preselects_no_harm_and_requires_one(client, challenge, alice):
    client.force_login(alice)
    url = reverse("challenge-submit", args=[challenge.slug])
    page = client.get(url).content.decode()
    select = page[page.index('name="harm_type"'):]
    select = select[:select.index("</select>")]
    assert "required" in select.split(">", 1)[0]
    assert '<option value="" selected>' in select and select.count("selected") == 1
    response = client.post(url, {"title": "No harm named", "writeup": ""})
    assert response.status_code == 400 or "This field is required" in response.content.decode()
    assert not Submission.objects.filter(title="No harm named").exists()


@pytest.mark.parametrize("state, shown", [
    (states.QUEUED, False), (states.FAILED, True), (states.NEEDS_INFO, True), (states.PUBLISHED, False),
    (states.IN_REVIEW, False),
])
def test_resubmit_shows_only_where_a_new_submission_is_the_answer(client, challenge, alice, state, shown):
    submission = submission_create(challenge=challenge, participant=alice)
    Submission.objects.filter(pk=submission.pk).update(state=state)
    client.force_login(alice)
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert (">Resubmit</a>" in page) is shown


def test_the_progress_count_has_one_total_from_the_start(client, challenge, alice):
    from grading import services as grading_services
    from pipeline.models import ImageSet, ProbeRun

    submission = submission_create(challenge=challenge, participant=alice)
    run = ProbeRun.objects.create(submission=submission, backend="bwrap", status="ok")
    image_set = ImageSet.objects.create(run=run, path="x", n_images=24, title="t", attribute="a", groups=["a", "b"],
                                        manifest_sha256="sha256:0")
    measurement = grading_services.measurement_create(submission=submission, image_set=image_set)
    Submission.objects.filter(pk=submission.pk).update(state=states.MEASURING)
    client.force_login(alice)
    status_url = reverse("submission-status", args=[submission.pk])
    assert client.get(status_url).json()["progress"] is None  # not "0 of 24": the worker has not counted yet
    grading_services.measurement_progress(measurement_id=measurement.pk, done=0, total=96)  # 24 units × 4 models
    status = client.get(status_url).json()
    assert status["progress"] == {"done": 0, "total": 96} and status["progress_unit"] == "observations"
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert "measured 0 of 96 observations" in page
    Measurement.objects.filter(pk=measurement.pk).update(progress_total=24, progress_done=7)
    assert "measured 7 of 24 images" in client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
