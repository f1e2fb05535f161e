"""The platform's files in a real S3-compatible server (moto in server mode): what each key holds,
that workers' scratch copies go away, that a fault of the storage is the platform's, not the probe's."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

import blobs
from config.settings import s3_storage
from grading import services as grading_services
from grading.models import RegisteredModel
from pipeline.faults import PLATFORM_FAULTS
from tests.factories import challenge_create, submission_create, user_create
from tests.onnx_models import TINY_CARD, tiny_conv, write

pytestmark = pytest.mark.django_db


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _scratch_left() -> list[str]:
    root = Path(settings.SCRATCH_DIR)
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_s3_a_tree_goes_up_under_its_key_and_comes_back_whole(s3_server, s3_bucket, tmp_path):
    files = {"manifest.json": b'{"schema": 1}', "images/a.png": b"\x89PNG a", "images/deep/b.png": b"\x89PNG b"}
    source = _tree(tmp_path / "set", files)
    assert blobs.put_tree("runs/r1", source) == 3
    assert s3_server.keys(s3_bucket) == ["var/runs/r1/images/a.png", "var/runs/r1/images/deep/b.png",
                                         "var/runs/r1/manifest.json"]
    assert blobs.tree_names("runs/r1") == sorted(files)
    assert blobs.read_bytes("runs/r1/images/deep/b.png") == b"\x89PNG b"
    assert blobs.read_bytes("runs/r1/absent.png") is None
    before = _scratch_left()
    with blobs.fetched_tree("runs/r1") as local:
        assert local != source and Path(settings.SCRATCH_DIR) in local.parents
        assert {name: (local / name).read_bytes() for name in files} == files
    assert _scratch_left() == before  # the scratch copy is gone
    blobs.delete_tree("runs/r1")
    assert s3_server.keys(s3_bucket) == []


def test_s3_keys_that_climb_out_are_refused(s3_bucket):
    for key in ("../secret_key", "/etc/passwd", "runs/../../x"):
        with pytest.raises(ValueError, match="not a storage key"):
            blobs.read_bytes(key)


def test_s3_a_failed_block_uploads_nothing_and_leaves_no_scratch(s3_server, s3_bucket):
    before = _scratch_left()
    with pytest.raises(RuntimeError), blobs.writing_tree("artifacts/measurement-9") as directory:
        (directory / "plot.png").write_bytes(b"half")
        raise RuntimeError("the measurement failed")
    assert s3_server.keys(s3_bucket) == [] and _scratch_left() == before
    with blobs.writing_tree("artifacts/measurement-9") as directory:
        (directory / "plot.png").write_bytes(b"whole")
    assert s3_server.keys(s3_bucket) == ["var/artifacts/measurement-9/plot.png"] and _scratch_left() == before


def test_s3_a_storage_that_is_away_is_a_named_platform_fault(s3_bucket, settings):
    dead = s3_storage("var", bucket=s3_bucket, endpoint_url="http://127.0.0.1:9", region="us-east-1")
    dead["OPTIONS"]["client_config"] = __import__("botocore.config").config.Config(
        connect_timeout=1, read_timeout=1, retries={"max_attempts": 1})
    settings.STORAGES = {**settings.STORAGES, "blobs": dead}
    with pytest.raises(blobs.StorageUnavailable, match=r"object storage: could not .*runs/r1") as caught:
        blobs.tree_names("runs/r1")
    assert isinstance(caught.value, PLATFORM_FAULTS)  # the task retries; the probe is not blamed


def test_s3_an_uploaded_probe_is_in_the_bucket_and_a_worker_reads_a_scratch_copy(s3_server, s3_bucket):
    submission = submission_create(challenge=challenge_create(), participant=user_create("sam"))
    assert s3_server.keys(s3_bucket, "media/") == [f"media/{submission.probe.name}"]
    before = _scratch_left()
    with blobs.fetched_file(submission.probe) as path:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == submission.probe_sha256.removeprefix("sha256:")
    assert _scratch_left() == before


def test_s3_a_model_registered_on_one_host_is_fetched_and_checked_on_another(s3_server, s3_bucket, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(tmp_path / "host-a"))
    model = write(tmp_path / "model.onnx", tiny_conv())
    report = grading_services.registered_model_create(model_path=model, name="tiny-org",
                                                      card_path=write(tmp_path / "card.json", TINY_CARD))
    assert s3_server.keys(s3_bucket, "var/models/") == ["var/models/tiny-org/card.json",
                                                       "var/models/tiny-org/model.onnx"]
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(tmp_path / "host-b"))  # another host: nothing local
    grading_services.registered_models_fetch(names=["tiny-org@int8", "spectral-residual"])
    assert (tmp_path / "host-b" / "tiny-org" / "model.onnx").read_bytes() == model.read_bytes()
    assert RegisteredModel.objects.get(name="tiny-org").sha256 == report["sha256"]
    # Bytes in the bucket that are not the ones registered are refused, and nothing is installed.
    s3_server.client().put_object(Bucket=s3_bucket, Key="var/models/tiny-org/model.onnx", Body=b"tampered")
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(tmp_path / "host-c"))
    with pytest.raises(blobs.StorageUnavailable, match="does not match its sha256"):
        grading_services.registered_models_fetch(names=["tiny-org"])
    assert not (tmp_path / "host-c" / "tiny-org").exists()


def test_s3_a_published_findings_files_are_served_from_the_bucket(client, s3_bucket):
    from tests.grading.test_judge_console import measured_submission_create

    challenge = challenge_create()
    submission = measured_submission_create(challenge=challenge, participant=user_create("pat"))
    measurement = submission.measurements.get()
    # The set and artifacts were written to this host's disk by the fixture; the bucket is the truth now.
    local_set = Path(settings.VAR_DIR) / measurement.image_set.path
    blobs.put_tree(measurement.image_set.path, local_set)
    blobs.put_bytes(f"artifacts/measurement-{measurement.pk}/contact_sheet.png", b"\x89PNG sheet")
    client.force_login(submission.participant)
    png = client.get(reverse("submission-artifact", args=[submission.pk, "contact_sheet"]))
    assert png.status_code == 200 and b"".join(png.streaming_content) == b"\x89PNG sheet"
    assert client.get(reverse("submission-artifact", args=[submission.pk, "absent"])).status_code == 404


def test_s3_a_killed_workers_scratch_is_removed_by_the_next_task_on_its_host(s3_bucket):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = Path(settings.SCRATCH_DIR) / f"imageset-{int(dead.stdout)}-abc123"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "a.png").write_bytes(b"left by a killed worker")
    mine = Path(settings.SCRATCH_DIR) / "imageset-1-keep"  # pid 1 is alive: not ours to remove
    mine.mkdir(parents=True, exist_ok=True)
    with blobs.scratch("fetch"):
        pass
    assert not stale.exists() and mine.exists()
    mine.rmdir()
