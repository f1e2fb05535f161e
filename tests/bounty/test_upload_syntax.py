"""The door parses a probe's Python (never runs it): a syntax error is refused with its line."""
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token

from bounty import services
from bounty.models import Submission
from sandbox.probe_files import PROBE_SYNTAX, PROBE_TOO_NESTED, ProbeFileError, check_probe_syntax

pytestmark = pytest.mark.django_db

BROKEN = b"import os\n\ndef main(:\n    pass\n"


def _zip(members) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in members:
            archive.writestr(name, body)
    return buffer.getvalue()


def _message(name: str, source: bytes) -> str:
    with pytest.raises(ProbeFileError) as caught:
        check_probe_syntax(name=name, content=source)
    return str(caught.value)


def test_a_syntax_error_names_the_file_and_its_line():
    assert _message("mine.py", BROKEN) == PROBE_SYNTAX.format(name="probe.py", line=3, message="invalid syntax")


def test_a_helper_module_in_a_zip_is_parsed_too():
    content = _zip([("probe.py", b"import helpers\n"), ("lib/helpers.py", b"x = (1,\n")])
    message = _message("probe.zip", content)
    assert message.startswith("lib/helpers.py line 1: ") and "never closed" in message


@pytest.mark.parametrize("source", [b"x = 1\x00\n", b"\xff\xfe bad bytes\n", "# -*- coding: latin-1 -*-\nx = 'é'\n\tif".encode("latin-1")])
def test_null_bytes_bad_encodings_and_stray_indentation_are_syntax_errors(source):
    assert "probe.py line " in _message("probe.py", source)


def test_a_probe_nested_beyond_the_parser_is_refused_without_a_crash():
    assert _message("probe.py", b"x = " + b"-" * 100_000 + b"1\n") == PROBE_TOO_NESTED.format(name="probe.py")
    assert _message("probe.py", b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n").startswith(
        "probe.py line 1: too many nested parentheses")


def test_valid_python_in_a_py_and_a_zip_passes():
    check_probe_syntax(name="probe.py", content=b"async def f():\n    await g()\nmatch 1:\n    case _: pass\n")
    check_probe_syntax(name="probe.zip", content=_zip([("probe.py", b"print(1)\n"), ("README.txt", b"def (")]))


def test_the_api_refuses_a_syntax_error_with_a_400_naming_the_line_and_stores_nothing(client, challenge, alice):
    token = Token.objects.create(user=alice).key
    before = services.quota_usage(challenge=challenge, participant=alice)
    response = client.post(reverse("api-challenge-submissions", args=[challenge.slug]),
                           {"title": "t", "harm_type": "erasure", "probe": SimpleUploadedFile("probe.py", BROKEN)},
                           HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 400
    assert response.json() == {"error": PROBE_SYNTAX.format(name="probe.py", line=3, message="invalid syntax"),
                               "code": "probe_rejected", "field": "probe", "extra": {}}
    assert not Submission.objects.exists()
    assert services.quota_usage(challenge=challenge, participant=alice) == before


def test_the_form_shows_the_syntax_error_at_the_probe_field(client, challenge, alice):
    client.force_login(alice)
    zipped = _zip([("probe.py", b"import helpers\n"), ("helpers.py", BROKEN)])
    response = client.post(reverse("challenge-submit", args=[challenge.slug]),
                           {"title": "t", "harm_type": "erasure", "probe": SimpleUploadedFile("probe.zip", zipped)})
    assert response.status_code == 200
    assert response.context["form"].errors["probe"] == [
        PROBE_SYNTAX.format(name="helpers.py", line=3, message="invalid syntax")]
    assert not Submission.objects.exists()
