"""Bodies the API cannot read are a 400 with a message, never a 500 (anonymous or not)."""
from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,  # past the interpreter's recursion limit
    '{"username": ' + "[" * 40 + "1" + "]" * 40 + ', "password": "x"}',  # past the API's own depth
    '{"username": "a", "password": ',  # truncated
    b"\xff\xfe\x00",  # not UTF-8
    "NaN garbage",
])
def test_unreadable_json_bodies_are_a_400(client, body):
    response = client.post(reverse("api-token"), body, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json() or "detail" in response.json()


def test_a_plain_json_login_still_works(client):
    from tests.factories import user_create

    user_create("nadia", password="the-right-one-9")
    response = client.post(reverse("api-token"), {"username": "nadia", "password": "the-right-one-9"},
                           content_type="application/json")
    assert response.status_code == 200 and response.json()["token"]
