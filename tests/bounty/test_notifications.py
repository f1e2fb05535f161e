"""E-mails to participants: one per change they act on, with a link, from templates, logged at INFO, opt-out."""
from __future__ import annotations

import logging

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from bounty import notifications, states
from tests.bounty.conftest import move_through
from tests.factories import submission_create

pytestmark = pytest.mark.django_db(transaction=True)  # the mails go out on commit

FULL_PATH = (states.RUNNING, states.MEASURING, states.MEASURED, states.IN_REVIEW, states.ACCEPTED, states.PUBLISHED)


@override_settings(SITE_URL="https://bounty.example.org")
def test_a_submission_that_goes_all_the_way_sends_three_mails_each_with_its_link(challenge, alice, caplog):
    with caplog.at_level(logging.INFO, logger="bounty.notifications"):
        submission = submission_create(challenge=challenge, participant=alice)
        move_through(submission, *FULL_PATH)
    subjects = [m.subject for m in mail.outbox]
    assert subjects == [f"[{challenge.title}] Your submission #{submission.pk} {what}"
                        for what in ("is in review", "was accepted", "is published")]
    link = f"https://bounty.example.org/submissions/{submission.pk}/"
    assert all(link in m.body and m.to == [alice.email] for m in mail.outbox)
    logged = [r for r in caplog.records if r.name == "bounty.notifications"]
    assert len(logged) == 3 and {r.levelno for r in logged} == {logging.INFO}


def test_needs_info_is_mailed_and_the_answer_back_to_review_is_not(challenge, alice):
    submission = submission_create(challenge=challenge, participant=alice)
    move_through(submission, *FULL_PATH[:4], states.NEEDS_INFO, states.IN_REVIEW)
    assert [m.subject.split(f"#{submission.pk} ")[1] for m in mail.outbox] == [
        "is in review", "needs information from you"]
    assert len(mail.outbox) == 2 and "answer it on the submission's page" in mail.outbox[-1].body


def test_a_person_who_turned_mails_off_gets_none(client, challenge, alice):
    client.force_login(alice)
    page = client.get(reverse("notification-settings")).content.decode()
    assert 'name="state_emails" checked' in page
    assert client.post(reverse("notification-settings"), {}).status_code == 302
    assert not notifications.state_emails_enabled(user=alice)
    submission = submission_create(challenge=challenge, participant=alice)
    move_through(submission, *FULL_PATH)
    assert mail.outbox == []
    client.post(reverse("notification-settings"), {"state_emails": "on"})
    assert notifications.state_emails_enabled(user=alice)
