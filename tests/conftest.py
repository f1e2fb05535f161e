"""Shared fixtures: a real Celery worker process on the test database and Redis."""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """A `celery worker` subprocess using the test database; can be killed and restarted."""

    live: list["WorkerProcess"] = []  # every worker this session started, for the teardown below

    def __init__(self, env: dict, log_path: Path, concurrency: int = 2, extra_args: tuple = (), name: str = "test"):
        self.env, self.log_path, self.concurrency = env, log_path, concurrency
        self.extra_args, self.name = tuple(extra_args), name
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "INFO", "-c", str(self.concurrency),
             "--without-gossip", "--without-mingle", "-n", f"{self.name}-{os.getpid()}@%h", *self.extra_args],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if self not in WorkerProcess.live:
            WorkerProcess.live.append(self)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Celery worker exited at start:\n{self.log_tail()}")
            if self._answers():
                return
        raise RuntimeError(f"the Celery worker did not answer a ping in 90 s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        """The worker answers a ping on its own broker (which may not be this process's)."""
        from celery import Celery

        broker = self.env.get("REDIS_URL")
        if not broker:
            from config.celery import app

            return bool(app.control.ping(timeout=1.0))
        probe = Celery(broker=broker, set_as_current=False)  # never the app this process sends with
        try:
            return any(self.name in name for reply in probe.control.ping(timeout=1.0) for name in reply)
        finally:
            probe.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole worker process group (main process and its pool children)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def worker_env(django_db_setup, django_db_blocker) -> dict:
    """Environment for processes that must see the test database (workers, servers)."""
    import redis
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings_test",
               VAR_DIR=str(settings.VAR_DIR), PYTHONPATH=str(ROOT))
    return env


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """Each test counts its own rate limits, lockouts and cached figures: the cache's key prefix names
    the test, so failed logins of earlier tests (same address, same usernames) never lock a later one."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"{caches['default'].get('KEY_PREFIX', '')}-{uuid.uuid4().hex[:8]}"
    settings.CACHES = caches


def _alive(worker: WorkerProcess) -> bool:
    return worker.proc is not None and worker.proc.poll() is None


@pytest.fixture(autouse=True)
def _worker_quiet_before_the_tables_are_cleared(request):
    """A transactional test ends with TRUNCATE; a worker still finishing that test's tasks could
    deadlock with it. Drop what is queued and wait (boundedly) until the shared worker is idle."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if not marker or not marker.kwargs.get("transaction") or not any(_alive(w) for w in WorkerProcess.live):
        return
    import redis
    from django.conf import settings

    from config.celery import app

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery", "bulk")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        active = app.control.inspect(timeout=0.5, limit=1).active() or {}  # the shared worker answers at once
        if not any(active.values()):
            return
        time.sleep(0.5)


@pytest.fixture(scope="session")
def celery_worker(worker_env):
    from django.conf import settings

    worker = WorkerProcess(worker_env, Path(settings.VAR_DIR) / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def paused_worker(celery_worker, settings):
    """No worker runs this test's queued work (it stays queued); the shared worker resumes after."""
    import redis

    celery_worker.stop()
    yield
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery", "bulk")
    celery_worker.start()


def free_port() -> int:
    """A TCP port nobody listens on right now, for a server a test starts."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float = 180, interval: float = 0.5, what: str = "condition"):
    """Poll until predicate() is truthy; a bound on waiting, not a speed assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible server (moto in server mode) for the whole session."""
    from tests.s3server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3") / "s3.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, settings, monkeypatch):
    """This test's own bucket as the platform's storage (both the probes' and the blobs')."""
    from config.settings import s3_storage

    bucket = s3_server.bucket_create()
    for name, value in s3_server.env(bucket).items():
        monkeypatch.setenv(name, value)
    options = dict(bucket=bucket, endpoint_url=s3_server.url, region="us-east-1")
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage("media", **options),
                         "blobs": s3_storage("var", **options)}
    return bucket
