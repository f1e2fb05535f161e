"""A real upload far past the cap, over HTTP: stopped while it streams, answered with a named 400."""
from __future__ import annotations

import http.client
import tracemalloc
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from bounty import errors
from bounty.models import Submission
from tests.factories import challenge_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)  # the live server's thread must see the rows

CHUNK = 1024 * 1024


def _stream_upload(url: str, *, token: str, size: int) -> tuple[int, bytes]:
    """POST a multipart body with a `size`-byte probe, written chunk by chunk as a client would."""
    boundary = "----capped-upload-test"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nbig\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"harm_type\"\r\n\r\nunder-representation\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"probe\"; filename=\"probe.py\"\r\n"
            "Content-Type: text/x-python\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    connection.putrequest("POST", parts.path)
    connection.putheader("Authorization", f"Token {token}")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    connection.putheader("Content-Length", str(len(head) + size + len(tail)))
    connection.endheaders()
    connection.send(head)
    line = b"# " + b"x" * 77 + b"\n"
    block = line * (CHUNK // len(line)) + b"#" * (CHUNK % len(line))
    for _ in range(size // CHUNK):
        connection.send(block)
    connection.send(tail)
    response = connection.getresponse()
    return response.status, response.read()


def test_an_upload_far_past_the_cap_is_stopped_while_streaming_with_bounded_memory(live_server, settings):
    settings.MAX_PROBE_UPLOAD_BYTES = 2 * CHUNK
    challenge = challenge_create(slug="streamed")
    token = Token.objects.create(user=user_create("streamer")).key
    url = live_server.url + reverse("api-challenge-submissions", args=[challenge.slug])
    tracemalloc.start()
    try:
        status, body = _stream_upload(url, token=token, size=64 * CHUNK)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 400
    assert errors.UPLOAD_TOO_LARGE.format(limit=2 * CHUNK).encode() in body and b'"field":"probe"' in body
    assert peak < 16 * CHUNK  # a quarter of the upload: it was never held whole (the client's blocks included)
    assert not Submission.objects.exists()


def test_an_upload_within_the_cap_passes_the_handler_whole(live_server, settings):
    settings.MAX_PROBE_UPLOAD_BYTES = 2 * CHUNK
    challenge = challenge_create(slug="streamed-ok")
    token = Token.objects.create(user=user_create("streamer2")).key
    url = live_server.url + reverse("api-challenge-submissions", args=[challenge.slug])
    status, _body = _stream_upload(url, token=token, size=CHUNK)
    assert status == 201
    submission = Submission.objects.get()
    assert submission.probe.size == CHUNK
