"""The finding page's "re-measure it yourself" command gives back the published document's sha256."""
from __future__ import annotations

import hashlib
import io
import re
import shlex
import zipfile
from html import unescape

import pytest
from django.core.management import call_command
from django.urls import reverse

from grading.models import Measurement
from grading.services import SPLIT_HOLDER
from pipeline.measurements import measurement_execute
from tests.bounty.conftest import publish
from tests.factories import ROOT, challenge_create, user_create
from tests.grading.test_judge_console import measured_submission_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def finding(monkeypatch):
    """A published finding whose stored document is the one the platform's worker produces."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # variants, ratios and compose options the old command left out, so a lost one changes the hash
    challenge = challenge_create(slug="remeasure", model_variants=["spectral-residual@32px"], aspect_ratios=[1.0, 2.0],
                                 compose_options={"padding": 6})
    submission = measured_submission_create(challenge=challenge, participant=user_create("alice"))
    original = Measurement.objects.get(submission=submission)
    worker = Measurement.objects.create(
        submission=submission, image_set=original.image_set, model_name=challenge.model_name, seed=original.seed,
        rerun_of=original, status="running", lease_holder=SPLIT_HOLDER, probe_sha256=submission.probe_sha256)
    # the merge step of a chunked measurement: the document the worker stores, without a chord
    assert measurement_execute(measurement_id=worker.pk, chunks_done=True) == "done (re-run)"
    worker.refresh_from_db()
    Measurement.objects.filter(pk=original.pk).update(document_json=worker.document_json,
                                                     document_sha256=worker.document_sha256)
    judge = user_create("jules")
    challenge.judges.add(judge)
    publish(submission, judge=judge)
    return submission


def test_the_shown_command_reproduces_the_published_documents_sha256(client, finding, tmp_path, capsys):
    page = client.get(reverse("finding-detail", args=[finding.pk])).content.decode()
    shown = unescape(re.search(r'id="remeasure".*?<code>(python manage\.py measure .*?)</code>', page, re.S).group(1))
    published = re.search(r"<code>(sha256:[0-9a-f]{64})</code>", page).group(1)
    archive = zipfile.ZipFile(io.BytesIO(client.get(reverse("finding-image-set", args=[finding.pk])).getvalue()))
    archive.extractall(tmp_path / "set")
    words = shlex.split(shown)
    assert words[:3] == ["python", "manage.py", "measure"] and words[3] == "IMAGE_SET_DIR"
    capsys.readouterr()
    call_command("measure", str(tmp_path / "set"), *words[4:])
    text = capsys.readouterr().out.rstrip("\n")
    assert "sha256:" + hashlib.sha256(text.encode()).hexdigest() == published
    assert published == Measurement.objects.get(submission=finding, rerun_of__isnull=True).document_sha256


def test_without_the_challenge_the_old_command_gives_a_different_document(client, finding, tmp_path, capsys):
    archive = zipfile.ZipFile(io.BytesIO(client.get(reverse("finding-image-set", args=[finding.pk])).getvalue()))
    archive.extractall(tmp_path / "set")
    capsys.readouterr()
    call_command("measure", str(tmp_path / "set"), "--model", "spectral-residual", "--seed", "0", "--json")
    text = capsys.readouterr().out.rstrip("\n")
    stored = Measurement.objects.get(submission=finding, rerun_of__isnull=True).document_sha256
    assert "sha256:" + hashlib.sha256(text.encode()).hexdigest() != stored
