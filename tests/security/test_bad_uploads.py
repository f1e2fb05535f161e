"""Bad input at the submission door: every broken upload gets a clear error, never a 500, nothing stored."""
from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from bounty.models import Submission
from sandbox import probe_files
from tests.factories import challenge_create, submission_create, user_create
from tests.sandbox.test_probe_files import CRAFTED_ZIPS, GOOD

pytestmark = pytest.mark.django_db


def _zip(entries: dict[str, bytes], *, symlink: str | None = None, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _nested() -> bytes:
    return _zip({"inner.zip": _zip({"probe.py": b"print(1)"})})


BAD_UPLOADS = [
    ("empty.py", b"", probe_files.PROBE_EMPTY + "|The submitted file is empty."),
    ("latin1.py", "print('caf\xe9')".encode("latin-1"), probe_files.PROBE_NOT_UTF8),
    ("probe.exe", b"MZ\x90\x00", probe_files.PROBE_WRONG_TYPE),
    ("probe.zip", b"PK\x03\x04 not really a zip", probe_files.ZIP_INVALID),
    ("probe.zip", b"", probe_files.PROBE_EMPTY + "|The submitted file is empty."),
    ("probe.zip", _zip({"other.py": b"print(1)"}), probe_files.ZIP_NO_PROBE),
    ("probe.zip", _nested(), probe_files.ZIP_NO_PROBE),
    ("probe.zip", _zip({"probe.py": b"x", "../escape.py": b"x"}), "unsafe entry name"),
    ("probe.zip", _zip({"probe.py": b"x", "/abs.py": b"x"}), "unsafe entry name"),
    ("probe.zip", _zip({"probe.py": b"x"}, symlink="link"), "unsafe entry name"),
    ("probe.zip", _zip({"probe.py": b"x", "bomb.bin": b"\0" * (60 * 1024 * 1024)}), "zip bomb"),
    ("probe.zip", _zip({"probe.py": b"x", **{f"f{i}.txt": b"x" for i in range(600)}}), "unpacks to more than"),
    ("probe.zip", _zip({"probe.py": b"x", "caf\udce9.py".encode("utf-8", "surrogateescape").decode("latin-1"): b"x"}),
     None),  # a non-UTF-8 name is only a name: accepted or refused, never a crash
    # Zips that passed the door before and crashed the worker that unpacked them.
    *[("probe.zip", content, message) for content, message in CRAFTED_ZIPS.values()],
]


@pytest.fixture
def participant_client(client):
    user = user_create("petra")
    client.force_login(user)
    return client


@pytest.mark.parametrize("name, content, message", BAD_UPLOADS)
def test_a_bad_probe_upload_is_refused_with_a_field_error_and_nothing_stored(participant_client, settings, name,
                                                                                content, message):
    challenge = challenge_create(slug="doors")
    stored_before = _stored_files(settings)
    response = participant_client.post(
        reverse("challenge-submit", args=[challenge.slug]),
        {"title": "t", "probe": SimpleUploadedFile(name, content), "writeup": "", "harm_type": "erasure"},
    )
    assert response.status_code in (200, 302, 400), response.status_code
    if message is None:
        return
    assert response.status_code in (200, 400)
    page = response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert any(m in page for m in message.split("|")), page[page.find("errorlist") - 200:page.find("errorlist") + 400]
    assert not Submission.objects.exists()
    assert _stored_files(settings) == stored_before


def _stored_files(settings) -> set:
    return {p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()} if settings.MEDIA_ROOT.exists() else set()


def test_an_upload_over_the_size_cap_is_refused_before_it_is_read(participant_client, settings):
    settings.MAX_PROBE_UPLOAD_BYTES = 1024
    challenge = challenge_create(slug="doors-size")
    response = participant_client.post(
        reverse("challenge-submit", args=[challenge.slug]),
        {"title": "t", "probe": SimpleUploadedFile("probe.py", b"#" * 4096), "writeup": "", "harm_type": "erasure"},
    )
    assert response.status_code in (200, 400)
    assert "the limit is 1024 bytes" in response.content.decode()
    assert not Submission.objects.exists()


@pytest.mark.parametrize("kind", CRAFTED_ZIPS)
def test_a_stored_probe_zip_that_is_broken_still_renders_the_judge_and_participant_pages(client, tmp_path, kind):
    """A zip stored before today's door checks (or damaged on disk) shows an error line, never a 500."""
    judge, participant = user_create("jules"), user_create("petra")
    challenge = challenge_create(slug="stored-zips", judges=[judge])
    (tmp_path / "probe.zip").write_bytes(GOOD)
    submission = submission_create(challenge=challenge, participant=participant, probe=tmp_path / "probe.zip")
    content, message = CRAFTED_ZIPS[kind]
    with open(submission.probe.path, "wb") as handle:
        handle.write(content)
    client.force_login(judge)
    response = client.get(reverse("judge-submission", args=[submission.pk]))
    assert response.status_code == 200
    page = response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert "The probe cannot be shown: The .zip" in page and message.split("(")[0] in page
    client.force_login(participant)
    assert client.get(reverse("submission-detail", args=[submission.pk])).status_code == 200
