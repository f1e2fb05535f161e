"""Sign-up with email confirmation, argon2 passwords, password reset, teams and the per-person quota."""
import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from bounty import accounts, errors
from bounty.errors import BountyError
from tests.factories import submission_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)  # the confirmation mail leaves on commit

PASSWORD = "a-long-enough-passphrase-42"


def sign_up(client, username="newcomer", email="new@example.org"):
    return client.post(reverse("signup"), {"username": username, "email": email,
                                           "password1": PASSWORD, "password2": PASSWORD})


def confirmation_link(message) -> str:
    return re.search(r"http://testserver(/accounts/confirm/\S+/)", message.body).group(1)


def test_signing_up_sends_a_confirmation_link_and_the_account_waits_for_it(client):
    response = sign_up(client)
    assert response.status_code == 200 and "We sent a message" in response.content.decode()
    user = get_user_model().objects.get(username="newcomer")
    assert not user.is_active
    assert [m.to for m in mail.outbox] == [["new@example.org"]]
    assert not client.login(username="newcomer", password=PASSWORD)


def test_the_confirmation_link_activates_the_account(client):
    sign_up(client)
    response = client.get(confirmation_link(mail.outbox[0]))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.login(username="newcomer", password=PASSWORD)


def test_a_tampered_confirmation_link_is_refused(client):
    sign_up(client)
    link = confirmation_link(mail.outbox[0])
    response = client.get(link[:-4] + "beef/")
    assert response.status_code == 400 and errors.CONFIRMATION_INVALID in response.content.decode()
    assert not get_user_model().objects.get(username="newcomer").is_active


def test_an_email_address_can_only_sign_up_once_and_the_mail_says_so(client):
    user_create("alice", email="taken@example.org")
    response = sign_up(client, email="TAKEN@example.org")
    assert response.status_code == 200
    assert not get_user_model().objects.filter(username="newcomer").exists()
    [message] = mail.outbox
    assert message.to == ["TAKEN@example.org"] and "already has an account" in message.body
    assert "/accounts/password_reset/" in message.body


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.Argon2PasswordHasher",
                                     "django.contrib.auth.hashers.PBKDF2PasswordHasher"])
def test_passwords_are_hashed_with_argon2_under_the_production_settings():
    from config import settings as production

    assert production.PASSWORD_HASHERS == settings.PASSWORD_HASHERS
    user = accounts.user_signup(username="hashed", email="h@example.org", password=PASSWORD, site_url="http://x/")
    assert user.password.startswith("argon2$")


def test_password_reset_mails_a_working_link(client):
    user_create("alice", email="alice@example.org")
    client.post(reverse("password_reset"), {"email": "alice@example.org"})
    path = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(path)["Location"]  # Django swaps the token for a session and redirects
    client.post(form_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert client.login(username="alice", password=PASSWORD)


def test_a_member_adds_a_teammate_and_both_see_the_team(client, alice, bob):
    team = accounts.team_create(name="Pixel Auditors", creator=alice)
    client.force_login(alice)
    client.post(reverse("team-add-member", args=[team.pk]), {"username": "bob"})
    assert set(team.members.values_list("username", flat=True)) == {"alice", "bob"}
    client.force_login(bob)
    assert "Pixel Auditors" in client.get(reverse("team-list")).content.decode()


def test_only_members_change_a_team(alice, bob):
    team = accounts.team_create(name="Closed shop", creator=alice)
    with pytest.raises(BountyError) as caught:
        accounts.team_add_member(team=team, username="bob", actor=bob)
    assert caught.value.message == errors.TEAM_NOT_MEMBER.format(team="Closed shop")


def test_a_team_submission_counts_against_the_member_who_sends_it(challenge, alice, bob):
    challenge.daily_limit = 2
    challenge.save()
    team = accounts.team_create(name="Shared", creator=alice)
    accounts.team_add_member(team=team, username="bob", actor=alice)
    submission_create(challenge=challenge, participant=alice, team=team)
    submission_create(challenge=challenge, participant=alice)
    with pytest.raises(BountyError) as caught:  # alice's own two are spent, as herself or as the team
        submission_create(challenge=challenge, participant=alice, team=team)
    assert caught.value.message == errors.DAILY_LIMIT_REACHED.format(limit=2)
    assert caught.value.extra["quota"]["left"] == 0
    submission_create(challenge=challenge, participant=bob, team=team)  # bob's quota is his own


def test_submitting_for_a_team_one_is_not_in_is_refused(challenge, alice, bob):
    team = accounts.team_create(name="Not yours", creator=alice)
    with pytest.raises(BountyError) as caught:
        submission_create(challenge=challenge, participant=bob, team=team)
    assert caught.value.field == "team"
