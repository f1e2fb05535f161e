"""The embedded default (SQLite, `make run`) waits for locks instead of failing a run.

Web, worker and beat share one SQLite file there: the settings must put it in WAL mode, take
the write lock when a transaction begins (IMMEDIATE) and wait for a held lock. Checked on a
real connection of the settings module loaded in a process of its own, as `make run` loads it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, threading, time
import django
django.setup()
from django.conf import settings
from django.db import connection, connections, transaction

with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    journal = cursor.fetchone()[0]
    cursor.execute("PRAGMA busy_timeout")
    busy = cursor.fetchone()[0]
    cursor.execute("CREATE TABLE IF NOT EXISTS t (n integer)")
    cursor.execute("INSERT INTO t VALUES (0)")

held, errors = threading.Event(), []

def holder():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE t SET n = n + 1")
        held.set()
        time.sleep(1.0)  # a long output check holding the write lock
    connections.close_all()

def writer():
    held.wait()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT n FROM t")
            cursor.execute("UPDATE t SET n = n + 10")
    except Exception as exc:
        errors.append(str(exc))
    connections.close_all()

threads = [threading.Thread(target=holder), threading.Thread(target=writer)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with connection.cursor() as cursor:
    cursor.execute("SELECT n FROM t")
    total = cursor.fetchone()[0]
print(json.dumps({"options": settings.DATABASES["default"]["OPTIONS"], "journal": journal, "busy": busy,
                  "errors": errors, "total": total}))
"""


def test_sqlite_default_runs_in_wal_mode_and_waits_for_a_held_write_lock(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", VAR_DIR=str(tmp_path / "var"),
               DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["journal"] == "wal"
    assert report["busy"] >= 30000
    assert report["options"]["transaction_mode"] == "IMMEDIATE"
    assert report["errors"] == [] and report["total"] == 11


def test_postgres_settings_get_no_sqlite_options(tmp_path):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", VAR_DIR=str(tmp_path / "var"),
               DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused")
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default'].get('OPTIONS', {}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "transaction_mode" not in proc.stdout and "journal_mode" not in proc.stdout
