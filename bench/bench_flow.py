"""Submit → in_review latency of a trivial probe through the real worker, against its floor.

Floor = the same probe run directly in the sandbox plus its measurement, in this process,
in the same run. The difference is what the flow adds: broker hops, database moves, scoring.
Uses a throwaway PostgreSQL database and Redis db 13; prints one JSON line.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "cropbias_bench_flow"
N = int(os.environ.get("BENCH_FLOW_N", 8))

TRIVIAL_PROBE = '''
from PIL import Image
from probekit import ImageSetWriter
with ImageSetWriter(groups=["a", "b"], title="trivial") as out:
    for k in range(4):
        image = Image.new("RGB", (64, 32), (128, 128, 128))
        image.paste((0, 0, 0) if k % 2 else (255, 255, 255), (4, 4, 28, 28))
        out.add(image, id=f"i{k}", regions=[("a", (0, 0, 32, 32)), ("b", (32, 0, 32, 32))])
'''


def main() -> None:
    import psycopg

    var = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings", VAR_DIR=str(var),
                      DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
                      REDIS_URL="redis://127.0.0.1:6379/13", MEASURE_CHUNK_SIZE="10000")
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    worker = None
    try:
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        import redis
        from django.conf import settings

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        probe = var / "trivial_probe.py"
        probe.write_text(TRIVIAL_PROBE)
        floor = floor_seconds(probe, var)
        log = open(var / "worker.log", "wb")
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "2", "-l", "WARNING",
                                   "--without-gossip", "--without-mingle"], cwd=ROOT, env=dict(os.environ),
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        latencies = submit_and_wait(probe)
        median = statistics.median(latencies)
        print(json.dumps({"bench": "flow", "submissions": len(latencies), "median_s": round(median, 2),
                          "max_s": round(max(latencies), 2), "floor_s": round(floor, 2),
                          "ratio_to_floor": round(median / floor, 2)}), flush=True)
    finally:
        if worker is not None:
            os.killpg(worker.pid, 15)
            worker.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        shutil.rmtree(var, ignore_errors=True)


def floor_seconds(probe: Path, var: Path) -> float:
    from grading.measurement import measure_image_set
    from sandbox.limits import Limits
    from sandbox.runner import run_probe

    times = []
    for k in range(3):
        started = time.perf_counter()
        result = run_probe(probe, backend="bwrap", limits=Limits(), out_dir=var / f"floor-{k}")
        assert result.status == "ok", result.to_json()
        measure_image_set(result.image_set_path, model="spectral-residual", seed=0)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def submit_and_wait(probe: Path) -> list[float]:
    from django.contrib.auth import get_user_model

    from bounty import services, states
    from bounty.models import Challenge, Submission
    from probekit import get_model

    model = get_model("spectral-residual")
    challenge = Challenge.objects.create(slug="bench", title="bench", state=states.OPEN, model_name=model.name,
                                         model_version=model.version, total_limit=10_000, daily_limit=10_000)
    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    latencies = []
    for k in range(N):
        started = time.perf_counter()
        submission = services.submission_create(challenge=challenge, participant=user, title=f"bench {k}",
                                                probe_name="probe.py", probe_content=probe.read_bytes())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = Submission.objects.values_list("state", flat=True).get(pk=submission.pk)
            if state in (states.IN_REVIEW, states.FAILED, states.PLATFORM_ERROR):
                break
            time.sleep(0.02)
        if state != states.IN_REVIEW:
            raise SystemExit(f"submission {k} ended {state}")
        latencies.append(time.perf_counter() - started)
    return latencies


if __name__ == "__main__":
    main()
