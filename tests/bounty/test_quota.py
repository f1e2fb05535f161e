"""The quota is a person's: teams neither add to it nor get around it, on the form or the API."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape
from rest_framework.authtoken.models import Token

from bounty import accounts, errors
from bounty.models import Submission
from tests.factories import EXAMPLE_PROBE, challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


def _form(team=None) -> dict:
    data = {"title": "again", "harm_type": "under-representation", "writeup": "",
            "probe": SimpleUploadedFile("probe.py", EXAMPLE_PROBE.read_bytes())}
    return {**data, "team": team.pk} if team else data


def test_one_member_teams_do_not_get_a_participant_past_the_daily_limit(client):
    challenge = challenge_create(slug="team-bypass", daily_limit=3)
    mallory = user_create("mallory")
    for _ in range(3):
        submission_create(challenge=challenge, participant=mallory)
    teams = [accounts.team_create(name=f"Sock puppet {i}", creator=mallory) for i in range(3)]
    client.force_login(mallory)
    headers = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=mallory).key}"}
    for team in teams:
        page = client.post(reverse("challenge-submit", args=[challenge.slug]), _form(team)).content.decode()
        assert escape(errors.DAILY_LIMIT_REACHED.format(limit=3)) in page and "0 left now" in page
        api = client.post(reverse("api-challenge-submissions", args=[challenge.slug]), _form(team), **headers)
        assert api.status_code == 400 and api.json()["extra"]["quota"]["left"] == 0
    assert Submission.objects.filter(participant=mallory).count() == 3


def test_a_teammates_submissions_do_not_spend_my_quota(client):
    challenge = challenge_create(slug="team-fair", daily_limit=1)
    alice, bob = user_create("alice"), user_create("bob")
    team = accounts.team_create(name="Pair", creator=alice)
    accounts.team_add_member(team=team, username="bob", actor=alice)
    submission_create(challenge=challenge, participant=alice, team=team)
    client.force_login(bob)
    response = client.post(reverse("challenge-submit", args=[challenge.slug]), _form(team))
    assert response.status_code == 302 and Submission.objects.filter(participant=bob, team=team).count() == 1
