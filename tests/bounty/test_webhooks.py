"""Organizers' webhooks: signed POSTs to a real HTTP receiver on localhost, retried, each attempt logged."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from bounty import states, webhooks
from bounty.models import Webhook, WebhookDelivery
from pipeline.tasks import deliver_webhook
from tests.conftest import wait_for
from tests.factories import challenge_create, submission_create, user_create

SECRET = "s3cret-for-tests"


class Receiver:
    """An HTTP server in a thread that records every POST and answers with the next scripted status."""

    def __init__(self, statuses=()):
        self.posts: list[dict] = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append({"body": body, "headers": dict(self.headers), "path": self.path})
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _signed_correctly(post) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(post["headers"]["X-Cropbias-Signature"], expected)


def _body(submission_id: int, slug: str = "hooks") -> str:
    return webhooks.state_change_body(submission_id=submission_id, challenge=slug, from_state="queued",
                                      to_state="running", at=timezone.now()).decode()


@pytest.mark.django_db
def test_add_webhook_registers_a_receiver_and_refuses_a_bad_url(receiver):
    challenge_create(slug="hooks")
    call_command("add_webhook", "hooks", receiver.url, "--secret", SECRET)
    assert Webhook.objects.get().url == receiver.url
    with pytest.raises(CommandError, match="is not an http:// or https:// URL"):
        call_command("add_webhook", "hooks", "file:///etc/passwd", "--secret", SECRET)
    with pytest.raises(CommandError, match="There is no challenge 'nope'"):
        call_command("add_webhook", "nope", receiver.url, "--secret", SECRET)


@pytest.mark.django_db
def test_a_delivery_is_a_signed_json_post_and_is_logged(receiver):
    hook = webhooks.webhook_create(slug=challenge_create(slug="hooks").slug, url=receiver.url, secret=SECRET)
    body = _body(7)
    assert webhooks.webhook_deliver(webhook_id=hook.pk, submission_id=7, body=body, attempt=1)
    (post,) = receiver.posts
    assert post["body"] == body.encode() and _signed_correctly(post)
    assert post["headers"]["Content-Type"] == "application/json"
    payload = json.loads(post["body"])
    assert set(payload) == {"event", "submission", "challenge", "from", "to", "at"}
    assert (payload["event"], payload["submission"], payload["challenge"]) == ("submission.state_changed", 7, "hooks")
    row = WebhookDelivery.objects.get()
    assert (row.status_code, row.ok, row.attempt, row.error) == (200, True, 1, "")


@pytest.mark.django_db
def test_a_failing_receiver_is_retried_with_backoff_and_every_attempt_is_logged():
    server = Receiver(statuses=[500, 503])
    try:
        hook = webhooks.webhook_create(slug=challenge_create(slug="hooks").slug, url=server.url, secret=SECRET)
        assert deliver_webhook.apply(args=[hook.pk, 9, _body(9)]).get() == "delivered"
        assert len(server.posts) == 3 and all(_signed_correctly(post) for post in server.posts)
    finally:
        server.close()
    rows = list(WebhookDelivery.objects.order_by("attempt").values_list("attempt", "status_code", "ok"))
    assert rows == [(1, 500, False), (2, 503, False), (3, 200, True)]
    assert "answered 500" in WebhookDelivery.objects.get(attempt=1).error
    assert [webhooks.retry_delay_s(k) for k in (1, 2, 3)] == [10, 20, 40]


@pytest.mark.django_db
def test_an_unreachable_receiver_gives_up_after_the_last_attempt(receiver):
    url = receiver.url
    receiver.close()  # nothing listens there any more
    hook = webhooks.webhook_create(slug=challenge_create(slug="hooks").slug, url=url, secret=SECRET)
    assert deliver_webhook.apply(args=[hook.pk, 3, _body(3)]).get() == "gave up"
    rows = WebhookDelivery.objects.all()
    assert rows.count() == webhooks.WEBHOOK_ATTEMPTS
    assert all(r.status_code is None and r.error.startswith("could not reach the receiver") for r in rows)


@pytest.mark.django_db(transaction=True)
def test_a_worker_posts_every_state_change_of_a_submission_signed(receiver, celery_worker):
    challenge = challenge_create(slug="hooks")
    webhooks.webhook_create(slug="hooks", url=receiver.url, secret=SECRET)
    submission = submission_create(challenge=challenge, participant=user_create("alice"))

    def measured():
        moves = [(p["from"], p["to"]) for p in map(lambda post: json.loads(post["body"]), receiver.posts)]
        return (states.MEASURING, states.MEASURED) in moves and moves

    moves = wait_for(measured, timeout=240, what="the webhook of the move to measured")
    assert (states.SUBMITTED, states.QUEUED) in moves and (states.QUEUED, states.RUNNING) in moves
    assert all(_signed_correctly(post) for post in receiver.posts)
    assert {json.loads(post["body"])["submission"] for post in receiver.posts} == {submission.pk}
    # A delivery is logged once its POST is answered: wait for the log to catch up with the receiver.
    wait_for(lambda: WebhookDelivery.objects.filter(ok=True).count() == len(receiver.posts), timeout=60,
             what="every delivery to be logged")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "http://localhost:8000/", "http://10.0.0.5/hook",
                                 "http://169.254.169.254/latest/meta-data/", "http://[::1]:6379/",
                                 "http://[::ffff:127.0.0.1]/", "http://0.0.0.0:5432/", "http://100.64.0.1/"])
def test_internal_targets_are_refused_when_saved(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    challenge_create(slug="hooks")
    with pytest.raises(CommandError, match="is not a public internet address"):
        call_command("add_webhook", "hooks", url, "--secret", SECRET)
    assert not Webhook.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["ftp://example.org/x", "gopher://example.org/", "file:///etc/passwd"])
def test_other_schemes_are_refused(url):
    challenge_create(slug="hooks")
    with pytest.raises(CommandError, match="is not an http:// or https:// URL"):
        call_command("add_webhook", "hooks", url, "--secret", SECRET)


@pytest.mark.django_db
def test_a_saved_webhook_that_now_points_inside_is_refused_at_send_time(receiver, settings):
    """DNS rebinding, or a row saved before the check: the connection itself checks the address."""
    hook = webhooks.webhook_create(slug=challenge_create(slug="hooks").slug, url=receiver.url, secret=SECRET)
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert not webhooks.webhook_deliver(webhook_id=hook.pk, submission_id=5, body=_body(5), attempt=1)
    assert receiver.posts == []
    row = WebhookDelivery.objects.get()
    assert row.status_code is None and row.error == "refused: the webhook's host '127.0.0.1' is not a public internet address"
    Webhook.objects.filter(pk=hook.pk).update(url="ftp://127.0.0.1/x")
    assert not webhooks.webhook_deliver(webhook_id=hook.pk, submission_id=5, body=_body(5), attempt=2)
    assert WebhookDelivery.objects.get(attempt=2).error.startswith("refused: the webhook URL must be http")


@pytest.mark.django_db
def test_a_redirect_is_not_followed(settings):
    """The receiver's 302 is its answer: the signed POST is not replayed at the redirect's target."""
    target = Receiver()
    server = Receiver(statuses=[302])
    try:
        hook = webhooks.webhook_create(slug=challenge_create(slug="hooks").slug, url=server.url, secret=SECRET)
        assert not webhooks.webhook_deliver(webhook_id=hook.pk, submission_id=6, body=_body(6), attempt=1)
        assert len(server.posts) == 1 and target.posts == []
        assert WebhookDelivery.objects.get().status_code == 302
    finally:
        server.close()
        target.close()
