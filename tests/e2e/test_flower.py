"""Flower against the app: `celery -A config flower` sees the live worker and the tasks the app sends."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import ROOT, free_port, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CREDENTIALS = "ops:flower-test-password"



class Flower:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, *, auth: bool = True):
        request = urllib.request.Request(self.base + path)
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(CREDENTIALS.encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def status_without_credentials(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/healthcheck", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


@pytest.fixture
def flower(worker_env, celery_worker):
    """The documented command (docs/operations.md), on the test broker, with a live worker."""
    port = free_port()
    log = open(Path(settings.VAR_DIR) / "flower.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "flower", f"--port={port}", "--address=127.0.0.1",
         f"--basic-auth={CREDENTIALS}"],
        cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = Flower(port)
    try:
        wait_for(lambda: proc.poll() is not None or server.answers(), timeout=60, what="Flower to listen")
        assert proc.poll() is None, (Path(settings.VAR_DIR) / "flower.log").read_text(errors="replace")[-3000:]
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
        log.close()


def test_flower_lists_the_live_worker_and_a_task_the_app_sent(flower, celery_worker):
    from config.celery import app

    assert flower.status_without_credentials("/api/workers") == 401
    workers = wait_for(lambda: {name: info for name, info in flower.get("/api/workers?refresh=1").items()
                                if name.startswith(f"{celery_worker.name}-")}, timeout=60, what="Flower to list the worker")
    assert len(workers) == 1

    # A harmless task, sent by name as the app sends every task; the worker's events reach Flower.
    result = app.send_task("pipeline.tasks.release_embargoed_findings")
    task = wait_for(lambda: (flower.get("/api/tasks").get(result.id) or {}).get("state") == "SUCCESS"
                    and flower.get("/api/tasks")[result.id], timeout=60, what="Flower to see the task succeed")
    assert task["name"] == "pipeline.tasks.release_embargoed_findings"
    assert task["worker"] in workers
