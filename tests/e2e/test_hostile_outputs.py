"""Hostile probe output and crafted zips through the API and a real worker: every submission ends
in a named state within a few attempts, every page answers, and a benign probe still gets measured."""
from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from bounty import cli, states
from bounty.models import Submission
from pipeline.models import ProbeRun
from tests.conftest import wait_for
from tests.factories import challenge_create, user_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HEADER = '''
import json, os
from pathlib import Path
from PIL import Image
out = Path(os.environ.get("PROBE_OUTPUT_DIR", "out"))
(out / "images").mkdir(parents=True, exist_ok=True)
Image.new("RGB", (64, 32), (200, 200, 200)).save(out / "images" / "a.png")
def item(i, image="images/a.png", group="a"):
    return {"id": f"i{i}", "image": image, "regions": [{"group": group, "box": [0, 0, 32, 32]}]}
'''
HOSTILE_PROBES = {
    "deep manifest": HEADER + '''
(out / "manifest.json").write_text('{"schema": 1, "groups": ["a", "b"], "items": ' + "[" * 200000 + "]" * 200000 + "}")
''',
    "two items, one image": HEADER + '''
(out / "manifest.json").write_text(json.dumps({"schema": 1, "groups": ["a", "b"],
                                               "items": [item(0), item(1, group="b")]}))
''',
    "wrong shapes everywhere": HEADER + '''
(out / "manifest.json").write_text(json.dumps({"schema": "1", "groups": {"a": 1}, "items": {"i": [None]}}))
''',
    "regions of every wrong type": HEADER + '''
items = [{"id": 1, "image": ["x"], "regions": "a"}, {"id": "z", "image": "images/a.png", "regions": [{"box": "0,0"}]}]
(out / "manifest.json").write_text(json.dumps({"schema": 1, "groups": ["a", "b"], "items": items}))
''',
    "a text file named png": HEADER + '''
(out / "images" / "b.png").write_text("<html>not an image</html>")
(out / "manifest.json").write_text(json.dumps({"schema": 1, "groups": ["a", "b"],
                                               "items": [item(0), item(1, "images/b.png", "b")]}))
''',
    "a link out of the set": HEADER + '''
os.symlink("/etc/passwd", out / "images" / "c.png")
(out / "manifest.json").write_text(json.dumps({"schema": 1, "groups": ["a", "b"],
                                               "items": [item(0), item(1, "images/c.png", "b")]}))
''',
    "control characters in names": HEADER + '''
Image.new("RGB", (64, 32)).save(out / "images" / "b\\nc.png")
(out / "manifest.json").write_text(json.dumps({"schema": 1, "groups": ["a\\u0000", "b\\u202e"],
                                               "items": [item(0, group="a\\u0000"), item(1, "images/b\\nc.png", "b\\u202e")]}))
''',
    "not json at all": HEADER + '''
(out / "manifest.json").write_bytes(b"\\xff\\xfe{" * 1000)
''',
}
BENIGN_PROBE = '''
from PIL import Image
from probekit import ImageSetWriter
with ImageSetWriter(groups=["a", "b"], title="benign") as out:
    for k in range(4):
        image = Image.new("RGB", (64, 32), (128, 128, 128))
        image.paste((0, 0, 0) if k % 2 else (255, 255, 255), (4, 4, 28, 28))
        out.add(image, id=f"i{k}", regions=[("a", (0, 0, 32, 32)), ("b", (32, 0, 32, 32))])
'''


def _many_scans_probe() -> str:
    """A probe that emits a small progressive JPEG whose refinement scan repeats 3,000 times: cheap
    to write, minutes to decode — it must be refused by counting scans, not by decoding."""
    import base64

    from tests.probekit.test_imageset_hostile import progressive_jpeg_with_repeated_scans

    data = base64.b64encode(progressive_jpeg_with_repeated_scans(1500, 3000)).decode()
    return HEADER + f'''
import base64
(out / "images" / "slow.jpg").write_bytes(base64.b64decode("{data}"))
(out / "manifest.json").write_text(json.dumps({{"schema": 1, "groups": ["a", "b"],
                                               "items": [item(0), item(1, "images/slow.jpg", "b")]}}))
'''


def _zip(entries: list[tuple[str, bytes]], method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _patch_local_header(data: bytes, offset: int, fmt: str, value) -> bytes:
    """Overwrite a field of the first local file header and of the central directory."""
    raw = bytearray(data)
    struct.pack_into(fmt, raw, offset, value)
    central = raw.rfind(b"PK\x01\x02")
    struct.pack_into(fmt, raw, central + offset + 2, value)  # same field, two bytes further on
    return bytes(raw)


def _crafted_zips() -> dict[str, bytes]:
    probe = b"print('hello')\n"
    good = _zip([("probe.py", probe)])
    bad_crc = bytearray(good)
    struct.pack_into("<I", bad_crc, 14, zlib.crc32(b"other") & 0xFFFFFFFF)
    bad_crc[bad_crc.rfind(b"PK\x01\x02") + 16:bad_crc.rfind(b"PK\x01\x02") + 20] = bad_crc[14:18]
    return {
        "encrypted flag": _patch_local_header(good, 6, "<H", 0x1),
        "bad crc": bytes(bad_crc),
        "compression method 99": _patch_local_header(good, 8, "<H", 99),
        "forged size": _patch_local_header(good, 22, "<I", 10),
        "duplicate probe.py": _zip([("probe.py", probe), ("probe.py", b"import os\n")]),
        "file and folder clash": _zip([("probe.py", probe), ("lib", b"x"), ("lib/x.py", b"x")]),
        "dot name": _zip([("probe.py", probe), (".", b"x")]),
        "over-long name": _zip([("probe.py", probe), ("a" * 300 + ".py", b"x")]),
    }


def test_hostile_outputs_and_crafted_zips_all_end_and_every_page_answers(live_server, celery_worker, client):
    challenge = challenge_create(slug="hostile", total_limit=100, daily_limit=100)
    judge = user_create("judge-h")
    challenge.judges.add(judge)
    participant = user_create("mallory")
    token = Token.objects.create(user=participant).key
    submitted, refused = {}, {}
    uploads = [(f"{name}.py", name, body.encode()) for name, body in HOSTILE_PROBES.items()]
    uploads.append(("scans.py", "progressive jpeg, repeated scans", _many_scans_probe().encode()))
    uploads += [("probe.zip", name, body) for name, body in _crafted_zips().items()]
    uploads.append(("benign.py", "benign", BENIGN_PROBE.encode()))
    for filename, title, content in uploads:
        try:
            created = cli.submit(live_server.url, token, challenge=challenge.slug, probe_name=filename,
                                 probe_content=content, title=title, harm_type="erasure")
            submitted[title] = created["id"]
        except cli.ApiError as exc:
            assert exc.status == 400, (title, exc.status, exc.body)  # refused at the door, with a reason
            assert exc.body.get("error"), exc.body
            refused[title] = exc.body["error"]
    assert "benign" in submitted

    from pipeline.tasks import reconcile

    ended = (states.IN_REVIEW, states.FAILED, states.PLATFORM_ERROR)

    def all_ended():
        reconcile.delay()  # what beat does in production: takeovers must stop at the attempt limit
        return Submission.objects.filter(pk__in=submitted.values(), state__in=ended).count() == len(submitted)

    wait_for(all_ended, timeout=900, interval=3, what="every hostile submission to end")
    time.sleep(3)  # a last reconcile sweep must not revive anything
    reconcile.delay()
    time.sleep(3)
    rows = {s.title: s for s in Submission.objects.filter(pk__in=submitted.values())}
    assert rows["benign"].state == states.IN_REVIEW, rows["benign"].state_reason
    for title, submission in rows.items():
        assert submission.state in ended, (title, submission.state)
        runs = ProbeRun.objects.filter(submission=submission)
        assert runs.count() <= 3 and max(r.attempt for r in runs) <= 3, (title, list(runs.values("attempt", "status")))
        if title != "benign":
            assert submission.state_reason, title  # a reason the participant can read
    client.force_login(judge)
    for title, pk in submitted.items():
        assert client.get(reverse("judge-submission", args=[pk])).status_code == 200, title
        status = cli.status(live_server.url, token, pk)
        assert status["state"] in ended, (title, status)
    client.force_login(participant)
    for title, pk in submitted.items():
        assert client.get(reverse("submission-detail", args=[pk])).status_code == 200, title
