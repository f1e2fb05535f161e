"""A throwaway platform for benchmarks: its own PostgreSQL database, Redis db, worker and web server."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = "postgres://postgres@127.0.0.1:5432/postgres"

TRIVIAL_PROBE = b'''
from PIL import Image
from probekit import ImageSetWriter
with ImageSetWriter(groups=["a", "b"], title="trivial") as out:
    for k in range(4):
        image = Image.new("RGB", (64, 32), (128, 128, 128))
        image.paste((0, 0, 0) if k % 2 else (255, 255, 255), (4, 4, 28, 28))
        out.add(image, id=f"i{k}", regions=[("a", (0, 0, 32, 32)), ("b", (32, 0, 32, 32))])
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_platform(db_name: str, *, redis_db: int = 13, workers: int = 2, web: bool = False,
                       env: dict | None = None):
    """Yield {"var", "url"}; Django is set up on the throwaway database in this process.

    `env` overrides the platform's settings (e.g. MEASURE_CHUNK_SIZE) for this process and its worker."""
    import psycopg

    var = Path(tempfile.mkdtemp(prefix=f"{db_name}-"))
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings", VAR_DIR=str(var),
                      DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db_name}",
                      REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}", MEASURE_CHUNK_SIZE="10000",
                      RATE_SUBMIT="10000/m")
    os.environ.update(env or {})
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{db_name}"')
    procs: list[subprocess.Popen] = []
    try:
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        import redis
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        log = open(var / "processes.log", "wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", str(workers), "-l", "WARNING",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        url = None
        if web:
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "-k", "gthread",
                 "--threads", "8"], cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.2)
        yield {"var": var, "url": url}
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(var, ignore_errors=True)
