"""A multi-host rehearsal: two workers with their own VAR_DIRs and no shared disk, one broker,
PostgreSQL and a real S3-compatible server. A submission flows from the web form to in_review,
its measurement split into chunks that both workers observe, its files only in the bucket."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

import blobs
from bounty import states
from bounty.models import Submission
from grading.measurement import document_dumps, measure_image_set
from probekit.bundle import verify_bundle
from tests.conftest import WorkerProcess, wait_for
from tests.factories import EXAMPLE_PROBE, challenge_create, user_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHUNK = "chunk "


@pytest.fixture
def two_hosts(worker_env, paused_worker, s3_server, s3_bucket):
    """Two workers, each with its own VAR_DIR, on the test broker and database and the test's bucket."""
    # Under the test VAR_DIR only so the sandbox's uid may traverse to its run directories;
    # nothing of the platform's is read from there: the web's storage is the bucket too.
    root = Path(settings.VAR_DIR) / "hosts" / uuid.uuid4().hex[:8]
    hosts = []
    for name in ("hosta", "hostb"):
        var = root / name
        var.mkdir(parents=True)
        env = dict(worker_env, **s3_server.env(s3_bucket), VAR_DIR=str(var), MEASURE_CHUNK_SIZE="2")
        hosts.append((WorkerProcess(env, var / "worker.log", concurrency=1, name=name), var))
    for worker, _var in hosts:
        worker.start()
    yield hosts
    for worker, _var in hosts:
        worker.stop()
    shutil.rmtree(root, ignore_errors=True)


def _files_under(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def test_multi_host_a_submission_flows_through_two_workers_without_a_shared_disk(client, two_hosts, s3_server,
                                                                                 s3_bucket, tmp_path):
    (worker_a, var_a), (worker_b, var_b) = two_hosts
    participant, judge = user_create("alice"), user_create("jules")
    challenge = challenge_create(judges=[judge])
    client.force_login(participant)
    with EXAMPLE_PROBE.open("rb") as probe:
        response = client.post(reverse("challenge-submit", args=[challenge.slug]),
                               {"title": "High contrast wins", "probe": probe, "writeup": "It does.",
                                "harm_type": "under-representation"})
    assert response.status_code == 302, response.content.decode()[:2000]
    submission = Submission.objects.get(participant=participant)
    assert s3_server.keys(s3_bucket, f"media/{submission.probe.name}")  # the upload is in the bucket

    def reached_review():
        submission.refresh_from_db()
        assert submission.state not in (states.FAILED, states.PLATFORM_ERROR), (
            submission.state_reason, worker_a.log_tail(), worker_b.log_tail())
        return submission.state == states.IN_REVIEW

    wait_for(reached_review, timeout=300, what="the submission to reach in_review on two hosts")
    measurement = submission.measurements.get()
    image_set = measurement.image_set

    # The measurement was split, and both hosts observed chunks of it.
    logs = {name: var / "worker.log" for name, var in (("a", var_a), ("b", var_b))}
    chunks = {name: log.read_text(errors="replace").count(f"measurement {measurement.pk}: {CHUNK}")
              for name, log in logs.items()}
    assert chunks["a"] >= 1 and chunks["b"] >= 1, chunks

    # Everything lives in the bucket: the set, the artifacts; the chunks' observations were merged and removed.
    keys = s3_server.keys(s3_bucket, "var/")
    assert f"var/{image_set.path}/manifest.json" in keys
    assert any(k.startswith(f"var/artifacts/measurement-{measurement.pk}/") and k.endswith(".png") for k in keys)
    wait_for(lambda: not s3_server.keys(s3_bucket, f"var/observations/measurement-{measurement.pk}/"), timeout=30,
             what="the merged observations to be removed from the bucket")
    # No host kept the set, its probe or a scratch directory; none holds the other's files.
    for var in (var_a, var_b):
        left = [f for f in _files_under(var) if f != "worker.log" and f != "secret_key"
                and not f.startswith(("measure-cache/", "models/.derived/"))]
        assert left == [], (var.name, left)

    # The document is the one an unsplit measurement of the stored set computes, byte for byte.
    with blobs.fetched_tree(image_set.path) as set_dir:
        from bounty.selectors import challenge_measurement_settings

        alone = measure_image_set(set_dir, seed=measurement.seed, probe_sha256=submission.probe_sha256,
                                  **challenge_measurement_settings(challenge=challenge))
    assert document_dumps(alone) == measurement.document_json

    # The web side serves the finding's files from the bucket.
    page = client.get(reverse("submission-detail", args=[submission.pk]))
    assert page.status_code == 200
    artifact = next(k for k in keys if k.startswith(f"var/artifacts/measurement-{measurement.pk}/"))
    png = client.get(reverse("submission-artifact", args=[submission.pk, Path(artifact).stem]))
    assert png.status_code == 200 and b"".join(png.streaming_content).startswith(b"\x89PNG")

    # Published, its reproducibility bundle (probe and set read back from the bucket) verifies.
    client.force_login(judge)
    assert client.post(reverse("judge-publish", args=[submission.pk])).status_code == 302
    bundle = client.get(reverse("finding-bundle", args=[submission.pk]))
    assert bundle.status_code == 200
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"".join(bundle.streaming_content))
    report = verify_bundle(path)
    assert report["match"] is True, report
