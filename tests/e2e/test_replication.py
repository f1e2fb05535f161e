"""Replication on a fresh draw, end to end with a real worker and the bubblewrap sandbox.

Three probes of one challenge: the reference probe (draws from probekit.seed(), a real effect)
ends `replicated` with a different confirmatory document; a copy that ignores PROBE_SEED ends
`same_draw`; a copy that asks the target model while building its set fails its replication,
named. Each submission reached `in_review` first and stays there; the seed shows once final.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from bounty import states
from bounty.models import Submission
from grading.models import Measurement, Replication
from pipeline.models import ProbeRun
from tests.conftest import WorkerProcess, wait_for
from tests.factories import EXAMPLE_PROBE, challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)

FINAL = ("replicated", "not_replicated", "same_draw", "not_applicable", "failed")


@pytest.fixture
def replicating_worker(paused_worker, worker_env, settings):
    """A worker with replication on, alone on the queues (the shared one is paused)."""
    worker = WorkerProcess(dict(worker_env, REPLICATION="1"), Path(settings.VAR_DIR) / "worker-replication.log",
                           name="replication")
    worker.start()
    yield worker
    worker.stop()


def _probe(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def _final(submission_id: int):
    replication = Replication.objects.filter(submission_id=submission_id).first()
    return replication if replication is not None and replication.status in FINAL else None


def test_a_seeded_probe_replicates_a_fixed_one_is_the_same_draw_and_a_model_query_fails(
        client, replicating_worker, tmp_path):
    reference = EXAMPLE_PROBE.read_text()
    assert "random.Random(seed() or 7)" in reference
    fixed = _probe(tmp_path, "fixed.py", reference.replace("random.Random(seed() or 7)", "random.Random(7)"))
    asking = _probe(tmp_path, "asking.py", reference.replace(
        "rng = random.Random(seed() or 7)",
        "import probekit\nprobekit.get_model('spectral-residual')  # picks by the crop\nrng = random.Random(seed() or 7)"))
    challenge = challenge_create(slug="replication")
    participant = user_create("rhea")
    seeded = submission_create(challenge=challenge, participant=participant, title="Contrast wins, seeded")
    same = submission_create(challenge=challenge, participant=user_create("sam"), probe=fixed, title="Fixed set")
    model = submission_create(challenge=challenge, participant=user_create("mo"), probe=asking, title="Asks the crop")

    for submission in (seeded, same, model):
        replication = wait_for(lambda s=submission: _final(s.pk), timeout=400, what=f"{submission.title}'s replication")
        submission.refresh_from_db()
        # in_review before the replication ended, and still: replication moves no state
        assert submission.state == states.IN_REVIEW
        in_review_at = submission.events.filter(to_state=states.IN_REVIEW).values_list("at", flat=True).first()
        assert in_review_at is not None and in_review_at <= replication.finished_at
        assert replication.seed is not None

    seeded_rep, same_rep, model_rep = (Replication.objects.get(submission=s) for s in (seeded, same, model))
    assert seeded_rep.status == "replicated", seeded_rep.reason
    confirmatory = seeded_rep.confirmatory
    first = Measurement.objects.get(pk=seeded_rep.measurement_id)
    assert confirmatory.rerun_of_id == first.pk and confirmatory.document_sha256 != first.document_sha256
    assert seeded_rep.document_sha256 == confirmatory.document_sha256
    assert seeded_rep.tests and all(t["same_direction"] and t["p_holm"] < 0.05 for t in seeded_rep.tests)
    run = ProbeRun.objects.get(details__replication=seeded_rep.pk)
    assert run.status == "ok" and run.details.get("rerun_of") == first.pk

    assert same_rep.status == "same_draw" and same_rep.confirmatory is None
    assert "ignores PROBE_SEED" in same_rep.reason

    assert model_rep.status == "failed"
    assert "needs the target model" in model_rep.reason and "get_model('spectral-residual')" in model_rep.reason

    # robustness: every significant base test under the four changes, with a verdict
    robustness = wait_for(lambda: (lambda r: r if r.get("status") != "pending" else None)(
        Replication.objects.get(pk=seeded_rep.pk).robustness), timeout=400, what="robustness")
    assert robustness["status"] == "done" and robustness["tests"]
    for row in robustness["tests"].values():
        assert {"pad", "mirror", "jpeg", "scale"} <= set(row) and row["verdict"] in ("robust", "fragile")

    # the API and the status JSON show it, the seed revealed once final
    client.force_login(participant)
    body = client.get(reverse("api-submission-detail", args=[seeded.pk])).json()
    assert body["replication"]["status"] == "replicated" and body["replication"]["seed"] == seeded_rep.seed
    assert body["replication"]["document_sha256"] == confirmatory.document_sha256
    assert set(body["replication"]["tests"][0]) >= {"id", "estimate", "ci", "p_value", "p_holm", "same_direction"}
    status = client.get(reverse("submission-status", args=[seeded.pk])).json()
    assert status["replication"]["status"] == "replicated" and status["robustness"]["status"] == "done"
    assert body["robustness"]["tests"].keys() == robustness["tests"].keys()
    assert Submission.objects.get(pk=seeded.pk).state == states.IN_REVIEW
