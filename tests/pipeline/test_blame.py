"""Blame by cause at measurement: the set's content is the probe's fault, never a free platform fault."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from bounty import services as bounty_services
from bounty import states
from bounty.models import Submission
from grading.models import Measurement
from pipeline import measurements
from pipeline.faults import unknown_faults_count
from pipeline.models import ImageSet, ProbeRun
from probekit.synthetic import single_subjects
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


def _measuring(challenge, set_dir: Path) -> Measurement:
    """A submission in `measuring` with a pending measurement of `set_dir`, through the audited moves."""
    submission = submission_create(challenge=challenge, participant=user_create(f"p{uuid.uuid4().hex[:6]}"))
    move = bounty_services.submission_transition
    move(submission_id=submission.pk, from_states=(states.SUBMITTED,), to_state=states.QUEUED, reason="queued")
    run = ProbeRun.objects.create(submission=submission, backend="bwrap", status="ok", started_at=timezone.now())
    move(submission_id=submission.pk, from_states=(states.QUEUED,), to_state=states.RUNNING, reason="running")
    image_set = ImageSet.objects.create(
        run=run, path=str(set_dir.resolve().relative_to(settings.VAR_DIR)), n_images=4, title="t", attribute="a",
        groups=["high", "low"], manifest_sha256="sha256:" + hashlib.sha256(b"m").hexdigest())
    move(submission_id=submission.pk, from_states=(states.RUNNING,), to_state=states.MEASURING, reason="measuring")
    return Measurement.objects.create(submission=submission, image_set=image_set, model_name=challenge.model_name,
                                      probe_sha256=submission.probe_sha256, manifest_sha256=image_set.manifest_sha256)


@pytest.fixture
def set_dir():
    return single_subjects(Path(settings.RUNS_DIR) / f"test-{uuid.uuid4().hex[:12]}" / "out", n=3, size=48)


@pytest.fixture
def sent(monkeypatch):
    """The measurement tasks sent again (no worker here: the test delivers them itself)."""
    calls = []
    monkeypatch.setattr(measurements, "enqueue_measurement", lambda **kw: calls.append(kw))
    return calls


def _state(measurement: Measurement) -> tuple[str, str]:
    submission = Submission.objects.get(pk=measurement.submission_id)
    return submission.state, submission.events.order_by("-pk").first().reason


def _quota(measurement: Measurement) -> int:
    submission = Submission.objects.get(pk=measurement.submission_id)
    return bounty_services.quota_usage(challenge=submission.challenge, participant=submission.participant)["total"]


def test_an_unknown_exception_gets_one_free_retry_then_counts_against_the_quota(monkeypatch, set_dir, sent):
    measurement = _measuring(challenge_create(), set_dir)
    before = unknown_faults_count()

    def explode(*_args, **_kwargs):
        raise KeyError("a bug nobody foresaw")

    monkeypatch.setattr(measurements, "measure_image_set", explode)
    assert measurements.measurement_execute(measurement_id=measurement.pk) == "retrying"
    assert Measurement.objects.get(pk=measurement.pk).status == "pending" and len(sent) == 1
    assert measurements.measurement_execute(measurement_id=measurement.pk) == "failed"
    state, reason = _state(measurement)
    assert state == states.FAILED
    assert "KeyError" in reason and "again after a retry" in reason and "organizers were alerted" in reason
    assert _quota(measurement) == 1
    assert unknown_faults_count() == before + 2


def test_memory_past_the_cap_is_the_sets_fault(monkeypatch, set_dir, sent):
    measurement = _measuring(challenge_create(), set_dir)

    def hungry(*_args, **_kwargs):
        raise MemoryError

    monkeypatch.setattr(measurements, "measure_image_set", hungry)
    assert measurements.measurement_execute(measurement_id=measurement.pk) == "failed"
    state, reason = _state(measurement)
    assert state == states.FAILED and "more memory than a measuring process may use" in reason and not sent


def test_a_plan_over_the_cap_fails_before_any_model_runs(monkeypatch, settings, set_dir, sent):
    settings.MEASURE_MAX_PLAN_RUNS = 10
    settings.MEASURE_CHUNK_SIZE = 1  # the plan is checked where a measurement decides to split
    measurement = _measuring(challenge_create(), set_dir)
    monkeypatch.setattr(measurements, "measure_image_set", lambda *a, **k: pytest.fail("a model ran"))
    assert measurements.measurement_execute(measurement_id=measurement.pk) == "failed"
    state, reason = _state(measurement)
    assert state == states.FAILED and "capped at 10 model runs" in reason and _quota(measurement) == 1


def test_the_memory_cap_turns_a_real_allocation_into_memory_error():
    """In a fresh process (the cap is process-wide): past MEASURE_MEMORY_MB, numpy's allocation fails."""
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup()\n"
        "from django.conf import settings; settings.MEASURE_MEMORY_MB = 64\n"
        "import numpy as np\n"
        "from pipeline.bounds import memory_capped\n"
        "try:\n"
        "    with memory_capped():\n"
        "        np.ones(256 * 2**20, dtype=np.uint8)\n"
        "    print('allocated')\n"
        "except MemoryError:\n"
        "    print('refused')\n"
        "np.ones(256 * 2**20, dtype=np.uint8); print('restored')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=settings.BASE_DIR, env=dict(os.environ))
    assert result.stdout.split() == ["refused", "restored"], result.stderr


def test_an_organizer_model_over_its_budget_fails_the_measurement_naming_it(monkeypatch, set_dir, sent):
    from probekit.models.onnx_model import OVER_BUDGET, ModelFault

    measurement = _measuring(challenge_create(), set_dir)

    def stalls(*_args, **_kwargs):
        raise ModelFault(OVER_BUDGET.format(name="loopy", budget=10))

    monkeypatch.setattr(measurements, "measure_image_set", stalls)
    assert measurements.measurement_execute(measurement_id=measurement.pk) == "failed"
    state, reason = _state(measurement)
    assert state == states.FAILED and "model 'loopy' ran longer than its budget of 10 s" in reason and not sent
