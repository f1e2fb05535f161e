"""A measurement is computed once: longer than the reconcile grace, through a killed worker, and
through a Redis restart. Real worker processes with Celery beat running reconcile every second."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from bounty import states
from grading.models import Measurement, MeasurementStatus, Score
from tests.conftest import WorkerProcess, free_port, wait_for
from tests.factories import challenge_create, submission_create, user_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

GRACE_S = 2
# 120 composites on u2netp and two variants: a measurement of many times the grace.
# Fresh pixels every time, so the content-keyed observation cache cannot shorten it.
MANY_COMPOSITES_PROBE = '''
import random
from PIL import Image, ImageDraw
from probekit import ImageSetWriter

rng = random.SystemRandom()
colour = tuple(rng.randrange(40, 216) for _ in range(3))

with ImageSetWriter(groups=["high", "low"], title="many composites") as out:
    for k in range(120):
        image = Image.new("RGB", (240, 100), colour)
        draw = ImageDraw.Draw(image)
        for i in range(0, 100, 4 + k % 5):
            draw.line([(10 + (k % 2) * 120, i), (110 + (k % 2) * 120, 100 - i)], fill=(0, 0, 0), width=2)
        regions = [("high", (10, 0, 100, 100)), ("low", (130, 0, 100, 100))]
        if k % 2:
            regions = [("high", (130, 0, 100, 100)), ("low", (10, 0, 100, 100))]
        out.add(image, id=f"c{k}", regions=regions)
'''
RECEIVED = re.compile(r"Task pipeline\.tasks\.measure_submission\[[^\]]+\] received")



class RedisServer:
    """A private, throwaway Redis (no persistence, like a restart that loses everything)."""

    def __init__(self, workdir: Path):
        self.port, self.workdir, self.proc = free_port(), workdir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is installed by scripts/ensure_services.sh"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, timeout=20, interval=0.2, what="the private Redis to answer")

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def private_stack(worker_env, paused_worker, tmp_path):
    """A worker with beat (reconcile every second, grace 2 s) on its own Redis; the shared worker is paused."""
    server = RedisServer(tmp_path)
    server.start()
    env = dict(worker_env, REDIS_URL=server.url, REAPER_GRACE_S=str(GRACE_S), RECONCILE_EVERY_S="1",
               MEASURE_CHUNK_SIZE="100000")
    worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=2, name="once",
                           extra_args=("-B", "-s", str(tmp_path / "beat-schedule")))
    worker.start()
    yield server, worker
    worker.stop()
    server.stop()


def _long_measurement_submission(slug: str, tmp_path: Path):
    probe = tmp_path / "many_composites.py"
    probe.write_text(MANY_COMPOSITES_PROBE)
    challenge = challenge_create(slug=slug, model_name="u2netp", model_variants=["u2netp@int8", "u2netp@160px"],
                                 judges=[user_create(f"judge-{slug}")])
    submission = submission_create(challenge=challenge, participant=user_create(f"p-{slug}"), probe=probe)
    # Queued long ago: the private worker's reconcile sends it to its own broker.
    submission.runs.update(queued_at=submission.created_at.replace(year=2000))
    return submission


def _measuring(submission):
    def started():
        m = Measurement.objects.filter(submission=submission).first()
        return m is not None and m.status == "running" and m.progress_done > 0
    return started


def _reviewed(submission):
    def done():
        submission.refresh_from_db()
        assert submission.state not in (states.FAILED, states.PLATFORM_ERROR), submission.state_reason
        return submission.state == states.IN_REVIEW
    return done


def _measured_once(submission) -> Measurement:
    measurement = Measurement.objects.get(submission=submission)
    assert measurement.status == MeasurementStatus.DONE
    moves = list(submission.events.values_list("to_state", flat=True))
    assert moves.count(states.MEASURED) == 1 and moves.count(states.IN_REVIEW) == 1
    assert Score.objects.filter(submission=submission, kind=Score.PROVISIONAL).count() == 1
    return measurement


def test_a_measurement_longer_than_the_grace_is_received_by_a_worker_once(private_stack, tmp_path):
    _server, worker = private_stack
    submission = _long_measurement_submission("once-long", tmp_path)
    wait_for(_measuring(submission), timeout=240, what="the measurement to start")
    wait_for(_reviewed(submission), timeout=400, what="the measurement to finish")
    measurement = _measured_once(submission)
    assert measurement.attempts == 1
    log = worker.log_tail(100_000)
    assert len(RECEIVED.findall(log)) == 1
    # Reconcile swept several times while it ran, each time past the grace, and re-sent nothing.
    start = RECEIVED.search(log).end()
    end = re.compile(r"Task pipeline\.tasks\.measure_submission\[[^\]]+\] succeeded").search(log, start).start()
    sweeps = re.findall(r"Task pipeline\.tasks\.reconcile\[[^\]]+\] succeeded", log[start:end])
    assert len(sweeps) >= 2 * GRACE_S, len(sweeps)


def test_a_worker_killed_during_a_measurement_leaves_it_measured_once(private_stack, tmp_path):
    _server, worker = private_stack
    submission = _long_measurement_submission("once-kill", tmp_path)
    wait_for(_measuring(submission), timeout=240, what="the measurement to start")
    worker.kill()
    worker.start()  # its reconcile takes the measurement over once the dead worker's lease expires
    wait_for(_reviewed(submission), timeout=400, what="the measurement to be taken over and finish")
    measurement = _measured_once(submission)
    assert measurement.attempts == 2


def test_a_redis_restart_during_a_measurement_leaves_it_measured_once(private_stack, tmp_path):
    server, worker = private_stack
    submission = _long_measurement_submission("once-redis", tmp_path)
    wait_for(_measuring(submission), timeout=240, what="the measurement to start")
    server.stop()
    time.sleep(2)
    server.start()  # empty: every key, queue and unacknowledged message is gone
    reviewed = _reviewed(submission)

    def supervised():
        # kombu can end the worker on a lost broker ("Unrecoverable error" while restoring unacked
        # messages); a supervisor (systemd, the container runtime) starts it again, as here.
        if worker.proc.poll() is not None:
            worker.start()
        return reviewed()

    wait_for(supervised, timeout=400, what="the measurement to finish after the restart")
    measurement = _measured_once(submission)
    # Computed once when the worker rides out the restart; when kombu ended it, once more by the
    # restarted worker after the lease expired — either way one document, one score.
    assert measurement.attempts <= 2
