"""Faults on real parts: a worker killed mid-run, and work the broker lost."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psycopg
import pytest

from bounty import states
from bounty.models import Submission
from pipeline.models import ProbeRun
from tests.conftest import wait_for
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_PROBE = '''
"""Sleeps, then emits four composites: long enough to kill its worker in the middle."""
import time
from PIL import Image, ImageDraw
from probekit import ImageSetWriter

time.sleep(6)
with ImageSetWriter(groups=["high", "low"], title="slow") as out:
    for k in range(4):
        image = Image.new("RGB", (240, 100), (128, 128, 128))
        draw = ImageDraw.Draw(image)
        for i in range(0, 100, 6):
            draw.line([(10 + (k % 2) * 120, i), (110 + (k % 2) * 120, 100 - i)], fill=(0, 0, 0), width=2)
        regions = [("high", (10, 0, 100, 100)), ("low", (130, 0, 100, 100))]
        if k % 2:
            regions = [("high", (130, 0, 100, 100)), ("low", (10, 0, 100, 100))]
        out.add(image, id=f"c{k}", regions=regions)
'''


def _sandbox_processes(run_id) -> list[int]:
    """Processes of this run's sandboxes: bwrap naming the run's directory, or in its cgroups."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if str(run_id).encode() in fh.read():
                        found.add(int(entry))
            except OSError:
                continue
    for procs in Path("/sys/fs/cgroup").glob(f"*/cropbias/{run_id}-*/cgroup.procs"):
        found.update(int(pid) for pid in procs.read_text().split())
    return sorted(found)


def _reconcile_until(predicate, *, timeout: float, what: str):
    """Ask the worker to reconcile every few seconds (what Celery beat does in production)."""
    from pipeline.tasks import reconcile

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        reconcile.delay()
        time.sleep(3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_worker_killed_mid_run_is_recovered_and_the_run_completes_once(celery_worker, tmp_path):
    probe = tmp_path / "slow_probe.py"
    probe.write_text(SLOW_PROBE)
    challenge = challenge_create(slug="faults-kill", judges=[user_create("judge-k")])
    submission = submission_create(challenge=challenge, participant=user_create("kate"), probe=probe)
    run = submission.runs.get()
    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).status == "running" and _sandbox_processes(run.pk), timeout=120,
             what="the sandbox to start")

    celery_worker.kill()  # SIGKILL, main process and pool children
    wait_for(lambda: not _sandbox_processes(run.pk), timeout=30, what="the orphaned sandbox to die with its worker")
    celery_worker.start()

    def reviewed():
        submission.refresh_from_db()
        assert submission.state not in (states.FAILED, states.PLATFORM_ERROR), submission.state_reason
        return submission.state == states.IN_REVIEW

    _reconcile_until(reviewed, timeout=240, what="the killed run to be taken over and measured")
    run.refresh_from_db()
    assert submission.runs.count() == 1 and run.status == "ok"
    assert run.attempt == 2 and "restarted_from" in run.details
    assert submission.measurements.count() == 1
    moves = list(submission.events.values_list("to_state", flat=True))
    assert moves.count(states.MEASURING) == 1 and moves.count(states.IN_REVIEW) == 1
    # The first attempt's sandbox directory and cgroups are reaped: its supervisor is dead.
    from sandbox.backends import get_backend

    runs_dir = get_backend("bwrap").runs_dir
    leftovers = [p.name for p in runs_dir.iterdir()] if runs_dir.is_dir() else []
    assert not [name for name in leftovers if name.startswith(str(run.pk))], leftovers


def test_a_run_lost_by_the_broker_is_requeued_by_reconcile(celery_worker, settings):
    from redis import Redis

    challenge = challenge_create(slug="faults-lost", judges=[user_create("judge-l")])
    celery_worker.stop()
    submission = submission_create(challenge=challenge, participant=user_create("lou"))
    # The broker loses everything (as a Redis restart without persistence does).
    Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    ProbeRun.objects.filter(submission=submission).update(queued_at=submission.created_at.replace(year=2000))
    celery_worker.start()

    def reviewed():
        return Submission.objects.get(pk=submission.pk).state == states.IN_REVIEW

    _reconcile_until(reviewed, timeout=180, what="reconcile to re-queue the lost run")
    assert submission.runs.count() == 1


def test_a_worker_killed_during_a_measurement_chunk_still_gets_a_merged_document(celery_worker):
    from grading.models import Measurement

    # u2netp takes about a third of a second per image: chunks last long enough to be killed in.
    challenge = challenge_create(slug="faults-chunk", model_name="u2netp", judges=[user_create("judge-c")])
    log_before = celery_worker.log_tail(100_000).count("measure_chunk")
    submission = submission_create(challenge=challenge, participant=user_create("cid"))

    def chunk_started():
        measurement = Measurement.objects.filter(submission=submission).first()
        return (measurement is not None and measurement.progress_total > 0
                and celery_worker.log_tail(100_000).count("measure_chunk") > log_before)

    wait_for(chunk_started, timeout=120, what="a measurement chunk to start")
    celery_worker.kill()
    measurement = Measurement.objects.get(submission=submission)
    assert measurement.status == "running"
    celery_worker.start()

    def reviewed():
        submission.refresh_from_db()
        assert submission.state not in (states.FAILED, states.PLATFORM_ERROR), submission.state_reason
        return submission.state == states.IN_REVIEW

    _reconcile_until(reviewed, timeout=240, what="the measurement to be merged after its chunk worker died")
    measurement.refresh_from_db()
    assert measurement.status == "done" and Measurement.objects.filter(submission=submission).count() == 1
    assert len(json.loads(measurement.document_json)["hashes"]["images"]) == 24


def test_tasks_retry_while_the_database_is_away_and_then_finish(celery_worker):
    from django.db import connection

    challenge = challenge_create(slug="faults-db", judges=[user_create("judge-d")])
    celery_worker.stop()
    submission = submission_create(challenge=challenge, participant=user_create("dora"))
    name = connection.settings_dict["NAME"]

    def allow_connections(allowed: bool) -> None:
        # From the maintenance database: existing connections (this test's) stay, new ones are refused.
        dsn = {k: v for k, v in {"host": connection.settings_dict["HOST"], "port": connection.settings_dict["PORT"],
                                  "user": connection.settings_dict["USER"] or "postgres"}.items() if v}
        with psycopg.connect(dbname="postgres", autocommit=True, **dsn) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')

    allow_connections(False)
    try:
        celery_worker.start()
        wait_for(lambda: "Retry in" in celery_worker.log_tail(200), timeout=60, what="a task to retry")
    finally:
        allow_connections(True)

    def reviewed():
        return Submission.objects.get(pk=submission.pk).state == states.IN_REVIEW

    wait_for(reviewed, timeout=180, what="the retried tasks to finish")
    assert submission.runs.count() == 1
