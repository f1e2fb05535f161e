"""Plan and dimension bombs through the real sandbox: refused when the run's output is stored,
before any model runs; the submission ends `failed` with the rule, counted against the quota."""
from __future__ import annotations

from pathlib import Path

import pytest

from bounty import services, states
from bounty.models import Submission
from grading.models import Measurement
from pipeline.runs import run_execute
from tests.factories import EXAMPLE_PROBE, challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db

STRIP_PROBE = '''
import os
from PIL import Image
from probekit import ImageSetWriter

with ImageSetWriter(os.environ["PROBE_OUTPUT_DIR"], title="Strips", attribute="shape", groups=["a", "b"]) as out:
    for k in range(4):
        strip = Image.new("RGB", (1, 8000), (255, 255, 255))
        out.add(strip, id=f"s{k}", regions=[("ab"[k % 2], (0, 0, 1, 100))])
'''


def _run(challenge, probe: Path) -> Submission:
    submission = submission_create(challenge=challenge, participant=user_create(f"p{challenge.pk}"), probe=probe)
    run = submission.runs.get()
    run_execute(run_id=str(run.pk))
    submission.refresh_from_db()
    return submission


def _ended_failed(submission: Submission) -> str:
    assert submission.state == states.FAILED, (submission.state, submission.state_reason)
    assert not Measurement.objects.filter(submission=submission).exists()  # no model ran
    usage = services.quota_usage(challenge=submission.challenge, participant=submission.participant)
    assert usage["total"] == 1
    return submission.state_reason


def test_a_plan_over_the_cap_is_refused_before_any_model_runs(settings):
    settings.MEASURE_MAX_PLAN_RUNS = 10  # the example probe's 24 composites × 1 model
    reason = _ended_failed(_run(challenge_create(slug="plan-cap"), EXAMPLE_PROBE))
    assert "24 model runs (24 images × 1 model)" in reason and "capped at 10 model runs" in reason


def test_a_strip_image_is_refused_before_any_model_runs(tmp_path):
    probe = tmp_path / "strips.py"
    probe.write_text(STRIP_PROBE)
    reason = _ended_failed(_run(challenge_create(slug="strips"), probe))
    assert "item 's0'" in reason and "aspect ratio over 12:1" in reason
