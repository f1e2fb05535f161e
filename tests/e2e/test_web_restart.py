"""The web server restarted while work is in flight: nothing is lost (the web tier holds no state)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from rest_framework.authtoken.models import Token

from bounty import cli, states
from tests.conftest import ROOT, free_port, wait_for
from tests.factories import EXAMPLE_PROBE, challenge_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)


def _start_web(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout=60, interval=0.2, what="gunicorn to listen")
    return proc


def test_a_submission_survives_a_web_server_restart(worker_env, celery_worker):
    challenge = challenge_create(slug="web-restart")
    token = Token.objects.create(user=user_create("wes")).key
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = _start_web(worker_env, port)
    try:
        created = cli.submit(url, token, challenge=challenge.slug, probe_name=EXAMPLE_PROBE.name,
                             probe_content=EXAMPLE_PROBE.read_bytes(), title="restart", harm_type="erasure")
        os.killpg(web.pid, signal.SIGKILL)  # the web tier dies mid-flight
        web.wait(timeout=30)
        time.sleep(1)
        web = _start_web(worker_env, port)
        record = wait_for(lambda: (r := cli.status(url, token, created["id"]))["state"] == states.IN_REVIEW and r,
                          timeout=240, what="the submission to be measured after the restart")
        assert record["metrics"]["tests"]
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
            web.wait(timeout=30)
