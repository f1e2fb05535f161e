"""Headers on every page, files served as files, blind review on the participant page, text caps."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from bounty import accounts, services, states
from bounty.models import Submission
from bounty.permissions import HIDDEN_NAME
from bounty.templatetags.bounty_extras import cap
from tests.factories import EXAMPLE_PROBE, challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


def _directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password_reset/",
                                 "/api/challenges/", "/api/schema/", "/no-such-page/"])
def test_every_page_carries_a_strict_policy_and_the_security_headers(client, url):
    response = client.get(url)
    directives = _directives(response)
    assert directives["default-src"] == "default-src 'self'"
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    assert directives["frame-ancestors"] == "frame-ancestors 'none'" and response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff" and response["Referrer-Policy"] == "same-origin"


def test_the_admin_renders_under_the_policy_and_its_login_goes_through_the_limiter(client):
    assert client.get("/admin/login/?next=/admin/")["Location"] == reverse("login") + "?next=/admin/"
    staff = user_create("root")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 200 and "Content-Security-Policy" in response
    assert client.get("/api/schema/").status_code == 200


def test_no_template_has_inline_script_or_style(client):
    from pathlib import Path

    from tests.factories import ROOT

    for path in Path(ROOT, "templates").rglob("*.html"):
        text = path.read_text()
        assert "<style" not in text and 'style="' not in text, path
        assert all("src=" in tag.split(">")[0] for tag in text.split("<script")[1:]), path


def test_probe_output_is_served_as_a_named_file_that_runs_nothing(client):
    challenge = challenge_create(slug="served")
    user = user_create("sara")
    submission = submission_create(challenge=challenge, participant=user)
    from pipeline.models import ProbeRun

    ProbeRun.objects.create(submission=submission, backend="bwrap", stdout_tail="<script>alert(1)</script>")
    client.force_login(user)
    response = client.get(reverse("submission-log", args=[submission.pk, "stdout"]))
    assert response["Content-Type"] == "text/plain; charset=utf-8" and response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == f'inline; filename="submission-{submission.pk}-stdout.txt"'
    assert "sandbox" in _directives(response) and _directives(response)["default-src"] == "default-src 'none'"


def test_a_judge_on_the_participant_page_of_a_blind_review_sees_no_team(client):
    judge, alice = user_create("jude"), user_create("alice")
    challenge = challenge_create(slug="blind", judges=[judge])
    team = accounts.team_create(name="Pixel Auditors", creator=alice)
    submission = submission_create(challenge=challenge, participant=alice, team=team)
    client.force_login(judge)
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert "Pixel Auditors" not in page and "alice" not in page.replace(HIDDEN_NAME, "")
    client.force_login(alice)  # the participant still sees their own team
    assert "Pixel Auditors" in client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    Submission.objects.filter(pk=submission.pk).update(state=states.OUT_OF_SCOPE)  # decided: names may show
    client.force_login(judge)
    assert "Pixel Auditors" in client.get(reverse("submission-detail", args=[submission.pk])).content.decode()


@pytest.mark.parametrize("field,limit", [("title", 200), ("writeup", 20_000), ("self_justification", 1000)])
def test_submit_form_texts_past_their_cap_are_refused_with_the_limit_named(client, field, limit):
    challenge = challenge_create(slug=f"caps-{field.replace('_', '-')}")
    client.force_login(user_create(f"cap{field}"))
    data = {"title": "t", "harm_type": "under-representation", "writeup": "", "self_justification": "",
            field: "x" * (limit + 1), "probe": SimpleUploadedFile("probe.py", EXAMPLE_PROBE.read_bytes())}
    response = client.post(reverse("challenge-submit", args=[challenge.slug]), data)
    page = response.content.decode()
    assert response.status_code == 200 and f"at most {limit} characters" in page
    assert not Submission.objects.exists()


def test_api_texts_past_their_cap_and_unknown_self_ratings_are_400s(client):
    from rest_framework.authtoken.models import Token

    challenge = challenge_create(slug="caps-api")
    headers = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user_create('capi')).key}"}
    url = reverse("api-challenge-submissions", args=[challenge.slug])
    base = {"title": "t", "harm_type": "under-representation"}
    long_title = client.post(url, {**base, "title": "x" * 201,
                                   "probe": SimpleUploadedFile("probe.py", EXAMPLE_PROBE.read_bytes())}, **headers)
    assert long_title.status_code == 400 and long_title.json()["field"] == "title"
    ratings = client.post(url, {**base, "self_ratings": '{"' + "k" * 5000 + '": "v"}',
                                "probe": SimpleUploadedFile("probe.py", EXAMPLE_PROBE.read_bytes())}, **headers)
    assert ratings.status_code == 400 and ratings.json()["field"] == "self_ratings"
    assert len(ratings.content) < 1000 and not Submission.objects.exists()


def test_team_names_and_thread_replies_past_their_cap_are_refused(client):
    user = user_create("tina")
    client.force_login(user)
    page = client.post(reverse("team-list"), {"name": "n" * 101}).content.decode()
    assert "at most 100 characters" in page and not user.teams.exists()
    challenge = challenge_create(slug="caps-thread")
    submission = submission_create(challenge=challenge, participant=user)
    response = client.post(reverse("submission-thread", args=[submission.pk]), {"body": "b" * 5001}, follow=True)
    assert "Your reply: Ensure this value has at most 5000 characters" in response.content.decode()
    assert not submission.comments.exists()


def test_pages_cut_long_texts_they_did_not_cap_themselves():
    assert cap("h" * 14_000_000, 2000) == "h" * 2000 + "… (13998000 more characters not shown)"
    assert cap("short") == "short" and cap(None) == ""


def test_the_quota_page_says_how_many_are_left(client):
    challenge = challenge_create(slug="left", daily_limit=3)
    user = user_create("lefty")
    submission_create(challenge=challenge, participant=user)
    client.force_login(user)
    assert "2 left now" in client.get(reverse("challenge-submit", args=[challenge.slug])).content.decode()
    assert services.quota_usage(challenge=challenge, participant=user)["left"] == 2
