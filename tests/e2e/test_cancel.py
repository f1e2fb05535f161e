"""A participant cancels a running submission: its sandbox is killed and nothing is measured."""
from __future__ import annotations

import pytest

from bounty import services, states
from pipeline.models import ProbeRun
from tests.conftest import wait_for
from tests.e2e.test_faults import _sandbox_processes
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)

SLEEPY_PROBE = "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n"


def test_cancelling_a_running_submission_kills_its_sandbox(celery_worker, tmp_path):
    probe = tmp_path / "sleepy.py"
    probe.write_text(SLEEPY_PROBE)
    participant = user_create("carl")
    challenge = challenge_create(slug="cancel", judges=[user_create("judge-x")])
    submission = submission_create(challenge=challenge, participant=participant, probe=probe)
    run = submission.runs.get()
    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).status == "running" and _sandbox_processes(run.pk),
             timeout=120, what="the sandbox to start")

    services.submission_cancel(submission=submission, actor=participant)

    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).status == "cancelled", timeout=30, what="the run to stop")
    wait_for(lambda: not _sandbox_processes(run.pk), timeout=30, what="the sandbox processes to end")
    submission.refresh_from_db()
    assert submission.state == states.CANCELLED
    assert not submission.measurements.exists()
