"""One limiter for the pages and the API: logins and tokens, submissions, resets, sign-ups, teams."""
from __future__ import annotations

import itertools

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token

from bounty import accounts, errors
from bounty.models import Submission
from tests.factories import EXAMPLE_PROBE, challenge_create, user_create

pytestmark = pytest.mark.django_db

_addresses = (f"10.77.{i // 250}.{i % 250 + 1}" for i in itertools.count())  # a fresh client per call


@pytest.fixture(autouse=True)
def _hour_windows(settings):
    # The default counts, over windows long enough that none ends in the middle of a test.
    for name in ("RATE_LOGIN", "RATE_SUBMIT"):
        setattr(settings, name, getattr(settings, name).split("/")[0] + "/h")


def _limit(rate: str) -> int:
    return int(rate.split("/")[0])


def _token(client, username, password, address=None):
    return client.post(reverse("api-token"), {"username": username, "password": password},
                       REMOTE_ADDR=address or next(_addresses))


def test_password_guessing_on_the_token_api_is_locked_out_even_from_many_addresses(client):
    user_create("gina", password="the-right-one-1")
    statuses = [_token(client, "gina", f"guess-{i}").status_code for i in range(20)]
    assert 429 in statuses  # the done-when: a 429 within 20 guesses
    first = statuses.index(429)
    assert first == _limit(settings.RATE_LOGIN_FAILURES) and set(statuses[:first]) == {400}
    locked = _token(client, "gina", "the-right-one-1")
    assert locked.status_code == 429 and "token" not in locked.json()
    assert locked.json()["error"].startswith("Too many failed logins") and int(locked["Retry-After"]) > 0


def test_the_login_form_and_the_token_api_count_failures_together(client):
    user_create("hugo", password="the-right-one-2")
    failures = _limit(settings.RATE_LOGIN_FAILURES)
    for i in range(failures):
        if i % 2:
            assert _token(client, "hugo", "wrong").status_code == 400
        else:
            page = client.post(reverse("login"), {"username": "HUGO", "password": "wrong"}, REMOTE_ADDR=next(_addresses))
            assert page.status_code == 200
    page = client.post(reverse("login"), {"username": "hugo", "password": "the-right-one-2"}, REMOTE_ADDR=next(_addresses))
    assert page.status_code == 429 and "Too many failed logins" in page.content.decode()
    assert _token(client, "hugo", "the-right-one-2").status_code == 429


@pytest.mark.parametrize("spelling", ["ａｌｉｃｅ", "ALICE", "Ａlice"])
def test_a_locked_account_stays_locked_under_look_alike_spellings(client, spelling):
    """One normalisation (NFKC + case folding) for the limiter and authentication."""
    cache.clear()  # each spelling starts from an account that is not yet locked
    user_create("alice", password="the-right-one-4")
    for _ in range(_limit(settings.RATE_LOGIN_FAILURES)):
        assert _token(client, "alice", "wrong").status_code == 400
    assert _token(client, spelling, "the-right-one-4").status_code == 429
    page = client.post(reverse("login"), {"username": spelling, "password": "the-right-one-4"},
                       REMOTE_ADDR=next(_addresses))
    assert page.status_code == 429 and "_auth_user_id" not in client.session


def test_look_alike_spellings_authenticate_as_the_one_account(client):
    user = user_create("bruno", password="the-right-one-5")
    for spelling in ("ｂｒｕｎｏ", "BRUNO"):
        response = _token(client, spelling, "the-right-one-5")
        assert response.status_code == 200 and response.json()["token"] == Token.objects.get(user=user).key


def test_one_address_guessing_many_accounts_is_stopped(client):
    address = next(_addresses)
    statuses = [_token(client, f"nobody{i}", "x", address).status_code for i in range(_limit(settings.RATE_LOGIN) + 1)]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {400}


def test_a_right_password_before_the_lockout_gets_the_token(client):
    user = user_create("ines", password="the-right-one-3")
    for _ in range(_limit(settings.RATE_LOGIN_FAILURES) - 1):
        _token(client, "ines", "wrong")
    response = _token(client, "ines", "the-right-one-3")
    assert response.status_code == 200 and response.json()["token"] == Token.objects.get(user=user).key


def test_the_submit_form_and_the_api_share_one_submit_counter(client):
    challenge = challenge_create(slug="shared-rate", total_limit=1000, daily_limit=1000)
    user = user_create("sven")
    client.force_login(user)
    headers = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}
    bad = {"title": "t", "harm_type": "erasure"}
    for i in range(_limit(settings.RATE_SUBMIT)):
        if i % 2:
            response = client.post(reverse("api-challenge-submissions", args=[challenge.slug]),
                                   {**bad, "probe": SimpleUploadedFile("probe.txt", b"x")}, **headers)
            assert response.status_code == 400
        else:
            response = client.post(reverse("challenge-submit", args=[challenge.slug]),
                                   {**bad, "probe": SimpleUploadedFile("probe.txt", b"x")})
            assert response.status_code == 200
    api = client.post(reverse("api-challenge-submissions", args=[challenge.slug]),
                      {**bad, "probe": SimpleUploadedFile("probe.py", EXAMPLE_PROBE.read_bytes())}, **headers)
    assert api.status_code == 429 and api.json()["error"].startswith("Too many submissions")
    assert client.post(reverse("challenge-submit", args=[challenge.slug]), bad).status_code == 429
    assert not Submission.objects.exists()


def test_repeated_resets_to_one_address_send_at_most_the_cap_and_answer_alike(client):
    user_create("rita", email="rita@example.org")
    answers = set()
    for _ in range(25):
        response = client.post(reverse("password_reset"), {"email": "rita@example.org"}, REMOTE_ADDR=next(_addresses))
        answers.add((response.status_code, response["Location"]))
    assert len(mail.outbox) == _limit(settings.RATE_ACCOUNT_MAIL) == 5
    unknown = client.post(reverse("password_reset"), {"email": "nobody@example.org"}, REMOTE_ADDR=next(_addresses))
    assert answers == {(unknown.status_code, unknown["Location"])} == {(302, reverse("password_reset_done"))}


def test_one_client_asking_for_many_resets_gets_a_429(client):
    address = next(_addresses)
    statuses = [client.post(reverse("password_reset"), {"email": f"x{i}@example.org"}, REMOTE_ADDR=address).status_code
                for i in range(_limit(settings.RATE_RESET) + 1)]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {302} and not mail.outbox


@pytest.mark.django_db(transaction=True)  # the sign-up mails leave on commit
def test_sign_up_answers_the_same_for_a_used_and_a_fresh_address(client):
    user_create("olga", email="used@example.org")

    def sign_up(username, email):
        return client.post(reverse("signup"), {"username": username, "email": email, "password1": "pass-phrase-4711",
                                               "password2": "pass-phrase-4711"}, REMOTE_ADDR=next(_addresses))

    used, fresh = sign_up("olga2", "used@example.org"), sign_up("fresh", "fresh@example.org")
    assert (used.status_code, used.content) == (fresh.status_code, fresh.content)
    by_address = {m.to[0]: m.body for m in mail.outbox}
    assert "already has an account" in by_address["used@example.org"]
    assert "/accounts/confirm/" in by_address["fresh@example.org"]


def test_an_account_may_be_in_only_a_few_teams(client):
    alice, bob = user_create("alice"), user_create("bob")
    for i in range(settings.MAX_TEAMS_PER_USER):
        accounts.team_create(name=f"Team {i}", creator=alice)
    client.force_login(alice)
    page = client.post(reverse("team-list"), {"name": "One too many"}).content.decode()
    assert errors.TEAM_MEMBERSHIPS_REACHED.format(username="alice", limit=settings.MAX_TEAMS_PER_USER) in page
    own = accounts.team_create(name="Bob's", creator=bob)
    client.force_login(bob)
    client.post(reverse("team-add-member", args=[own.pk]), {"username": "alice"})
    assert not own.members.filter(pk=alice.pk).exists()


def test_team_changes_past_the_rate_get_a_429(client, settings):
    settings.RATE_TEAMS = "3/h"
    client.force_login(user_create("tess"))
    statuses = [client.post(reverse("team-list"), {"name": f"T{i}"}).status_code for i in range(4)]
    assert statuses == [302, 302, 302, 429]
