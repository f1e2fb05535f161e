"""Webhooks for organizers: each submission state change POSTed as signed JSON, by a Celery task.

`submission_transition` calls `webhooks_schedule` once the move is committed; it builds the
body once (the exact bytes that are signed, sent and logged) and sends one delivery task per
active webhook by name (`WEBHOOK_TASK`, registered by pipeline.tasks). The task calls
`webhook_deliver` and retries a failed delivery with exponential backoff, `WEBHOOK_ATTEMPTS` in
all; every attempt is a `WebhookDelivery` row, visible in the admin.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from bounty import states
from bounty.errors import BountyError
from bounty.models import Challenge, Submission, Webhook, WebhookDelivery
from bounty.webhook_guard import BAD_SCHEME, SCHEMES, WebhookTargetRefused, check_webhook_url, guarded_opener
from grading.models import ReplicationStatus
from grading.selectors import replication_status

logger = logging.getLogger(__name__)

WEBHOOK_TASK = "pipeline.tasks.deliver_webhook"
EVENT_STATE_CHANGED = "submission.state_changed"
SIGNATURE_HEADER = "X-Cropbias-Signature"
WEBHOOK_ATTEMPTS = 5
WEBHOOK_URL_INVALID = "The webhook URL {url!r} is not an http:// or https:// URL."
WEBHOOK_SECRET_EMPTY = "The webhook needs a secret: receivers check the signature with it."
WEBHOOK_NO_CHALLENGE = "There is no challenge {slug!r}."


def webhook_signature(*, secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>`, the value of the signature header."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def state_change_body(*, submission_id: int, challenge: str, from_state: str, to_state: str, at: datetime,
                      replication: str | None = None) -> bytes:
    """The signed body; the move into review after the measurement also says `"replication": "pending"`
    when the finding is being run again on a fresh draw."""
    body = {"event": EVENT_STATE_CHANGED, "submission": submission_id, "challenge": challenge,
            "from": from_state, "to": to_state, "at": at.isoformat()}
    if replication:
        body["replication"] = replication
    return json.dumps(body, separators=(",", ":")).encode()


def webhook_create(*, slug: str, url: str, secret: str) -> Webhook:
    """Register a receiver for a challenge; the URL and secret are checked first."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise BountyError(WEBHOOK_URL_INVALID.format(url=url), field="url") from None
    try:
        check_webhook_url(url)
    except WebhookTargetRefused as exc:
        raise BountyError(f"The webhook URL {url!r} is refused: {exc}.", field="url") from None
    if not secret:
        raise BountyError(WEBHOOK_SECRET_EMPTY, field="secret")
    challenge = Challenge.objects.filter(slug=slug).first()
    if challenge is None:
        raise BountyError(WEBHOOK_NO_CHALLENGE.format(slug=slug), field="challenge")
    return Webhook.objects.create(challenge=challenge, url=url, secret=secret)


def webhooks_schedule(*, submission_id: int, from_state: str, to_state: str, at: datetime) -> int:
    """Send one delivery task per active webhook of the submission's challenge; returns how many."""
    slug = Submission.objects.filter(pk=submission_id).values_list("challenge__slug", flat=True).first()
    hooks = list(Webhook.objects.filter(challenge__slug=slug, active=True).values_list("pk", flat=True))
    if not hooks:
        return 0
    pending = to_state in (states.MEASURED, states.IN_REVIEW) and \
        replication_status(submission=submission_id) == ReplicationStatus.PENDING
    body = state_change_body(submission_id=submission_id, challenge=slug, from_state=from_state,
                             to_state=to_state, at=at, replication=ReplicationStatus.PENDING if pending else None).decode()
    for webhook_id in hooks:
        try:
            current_app.send_task(WEBHOOK_TASK, args=[webhook_id, submission_id, body])
        except Exception:  # noqa: BLE001 - a broker hiccup must not undo a committed state move
            logger.exception("could not queue webhook %s for submission %s", webhook_id, submission_id)
    return len(hooks)


_OPENER = guarded_opener()  # http(s) to public addresses only, checked per connection; no redirects


def webhook_deliver(*, webhook_id: int, submission_id: int, body: str, attempt: int) -> bool:
    """POST `body` once to the webhook, log the attempt; True when the receiver answered 2xx."""
    webhook = Webhook.objects.filter(pk=webhook_id, active=True).first()
    if webhook is None:
        return True  # removed or switched off since: nothing left to deliver
    data = body.encode()
    request = urllib.request.Request(webhook.url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "cropbias-webhooks/1",
        SIGNATURE_HEADER: webhook_signature(secret=webhook.secret, body=data),
    })
    status, error = None, ""
    try:
        if urllib.parse.urlsplit(webhook.url).scheme not in SCHEMES:
            raise WebhookTargetRefused(BAD_SCHEME)
        with _OPENER.open(request, timeout=settings.WEBHOOK_TIMEOUT_S) as response:
            status = response.status
    except WebhookTargetRefused as exc:
        error = f"refused: {exc}"
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"the receiver answered {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        refused = isinstance(reason, WebhookTargetRefused)  # urllib wraps the guard's refusal
        error = f"refused: {reason}" if refused else f"could not reach the receiver: {reason}"
    ok = status is not None and 200 <= status < 300
    WebhookDelivery.objects.create(webhook=webhook, submission_id=submission_id, event=EVENT_STATE_CHANGED,
                                   body=body, attempt=attempt, status_code=status, ok=ok, error=error[:1000])
    if ok:
        logger.info("webhook %s: submission %s delivered (attempt %s, %s)", webhook_id, submission_id, attempt, status)
    else:
        logger.warning("webhook %s: submission %s not delivered (attempt %s): %s",
                       webhook_id, submission_id, attempt, error)
    return ok


def retry_delay_s(attempt: int) -> float:
    """Backoff after a failed attempt: base, 2×, 4×… the base (WEBHOOK_RETRY_BASE_S)."""
    return settings.WEBHOOK_RETRY_BASE_S * 2 ** (attempt - 1)
