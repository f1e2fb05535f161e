"""Rate limits on login and submit: past the limit a 429 with a plain message, nothing stored."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token

from bounty.models import Submission
from tests.factories import challenge_create, user_create

pytestmark = pytest.mark.django_db


def _limit(rate: str) -> int:
    return int(rate.split("/")[0])


def test_logins_past_the_rate_limit_get_a_429(client):
    address = "10.99.0.7"  # its own client address, so no other test shares the counter
    for i in range(_limit(settings.RATE_LOGIN)):
        # A new account name each time: the per-address counter stops this, not an account's lockout.
        response = client.post(reverse("login"), {"username": f"lena{i}", "password": "wrong"}, REMOTE_ADDR=address)
        assert response.status_code == 200
    response = client.post(reverse("login"), {"username": "lena", "password": "wrong"}, REMOTE_ADDR=address)
    assert response.status_code == 429 and "Too many attempts" in response.content.decode()


def test_submissions_past_the_rate_limit_get_a_429(client):
    challenge = challenge_create(slug="rates", total_limit=1000, daily_limit=1000)
    client.force_login(user_create("rafa"))
    url = reverse("challenge-submit", args=[challenge.slug])
    for _ in range(_limit(settings.RATE_SUBMIT)):
        response = client.post(url, {"title": "t", "probe": SimpleUploadedFile("probe.txt", b"x"), "harm_type": "erasure"})
        assert response.status_code == 200  # refused for its file type, counted all the same
    response = client.post(url, {"title": "t", "probe": SimpleUploadedFile("probe.py", b"print(1)"), "harm_type": "erasure"})
    assert response.status_code == 429
    assert not Submission.objects.exists()


def test_api_submissions_past_the_rate_limit_get_a_429(client):
    challenge = challenge_create(slug="rates-api", total_limit=1000, daily_limit=1000)
    token = Token.objects.create(user=user_create("ruth"))
    url = reverse("api-challenge-submissions", args=[challenge.slug])
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    for _ in range(_limit(settings.RATE_SUBMIT)):
        response = client.post(url, {"title": "t", "probe": SimpleUploadedFile("probe.txt", b"x"),
                                     "harm_type": "erasure"}, **headers)
        assert response.status_code == 400
    response = client.post(url, {"title": "t", "probe": SimpleUploadedFile("probe.py", b"print(1)"),
                                 "harm_type": "erasure"}, **headers)
    assert response.status_code == 429
    assert not Submission.objects.exists()
