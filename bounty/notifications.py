"""E-mails to participants: one per change they would act on, each with a link to the page.

Sent on commit of the state move (bounty.services.submission_transition) for the changes in
`NOTIFY_STATES` only: the queue and the sandbox stages show live on the page and are not mailed.
Texts live in templates/bounty/email/; a person can turn them off (NotificationPreference).
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from bounty import states
from bounty.models import NotificationPreference, Submission
from grading.models import ReplicationStatus
from grading.selectors import replication_status

logger = logging.getLogger(__name__)

# The move that is mailed → what it says in the subject.
NOTIFY_STATES = {
    states.IN_REVIEW: "is in review",
    states.NEEDS_INFO: "needs information from you",
    states.ACCEPTED: "was accepted",
    states.DUPLICATE: "was judged a duplicate",
    states.NOT_REPRODUCIBLE: "could not be reproduced",
    states.OUT_OF_SCOPE: "was judged out of scope",
    states.PUBLISHED: "is published",
}


def state_emails_enabled(*, user) -> bool:
    preference = NotificationPreference.objects.filter(user=user).first()
    return preference is None or preference.state_emails


def state_emails_set(*, user, enabled: bool) -> None:
    NotificationPreference.objects.update_or_create(user=user, defaults={"state_emails": enabled})


def should_notify(*, from_state: str, to_state: str) -> bool:
    """Only the moves a person acts on; into review only from measured (a reopened one was said)."""
    if to_state == states.IN_REVIEW:
        return from_state == states.MEASURED
    return to_state in NOTIFY_STATES


def notify_state_change(*, submission_id: int, from_state: str, to_state: str) -> bool:
    """E-mail the participant about this move if it is one worth a mail; a mail failure never breaks the flow."""
    if not should_notify(from_state=from_state, to_state=to_state):
        return False
    submission = Submission.objects.select_related("participant", "challenge").get(pk=submission_id)
    person = submission.participant
    if not person.email or not state_emails_enabled(user=person):
        return False
    context = {"submission": submission, "what": NOTIFY_STATES[to_state], "to_state": to_state,
               "replication_pending": to_state == states.IN_REVIEW
               and replication_status(submission=submission) == ReplicationStatus.PENDING,
               "url": settings.SITE_URL.rstrip("/") + reverse("submission-detail", args=[submission.pk]),
               "settings_url": settings.SITE_URL.rstrip("/") + reverse("notification-settings")}
    subject = render_to_string("bounty/email/state_changed_subject.txt", context).strip()
    try:
        send_mail(subject=subject, message=render_to_string("bounty/email/state_changed.txt", context),
                  from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[person.email], fail_silently=False)
    except Exception:  # noqa: BLE001 - mail is a courtesy, the state is already saved
        logger.exception("could not e-mail the participant of submission %s", submission_id)
        return False
    logger.info("e-mailed %s: submission %s %s", person.get_username(), submission_id, to_state)
    return True
