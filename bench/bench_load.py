"""Load: many API clients submit at once against 2 workers; every submission completes once.

Reports throughput (submissions measured per second) and queue-wait percentiles, as one JSON line.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import TRIVIAL_PROBE, throwaway_platform  # noqa: E402

SUBMISSIONS = int(os.environ.get("BENCH_LOAD_SUBMISSIONS", 200))
CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", 20))


def main() -> None:
    with throwaway_platform("cropbias_bench_load", web=True) as platform:
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        from bounty import cli, states
        from bounty.models import Challenge, Submission
        from pipeline.models import ProbeRun
        from probekit import get_model

        model = get_model("spectral-residual")
        Challenge.objects.create(slug="load", title="load", state=states.OPEN, model_name=model.name,
                                 model_version=model.version, total_limit=10_000, daily_limit=10_000)
        users = get_user_model().objects
        tokens = [Token.objects.create(user=users.create_user(f"c{i}", password="load-password-1")).key
                  for i in range(CLIENTS)]
        per_client = SUBMISSIONS // CLIENTS

        def client(token: str) -> list[int]:
            return [cli.submit(platform["url"], token, challenge="load", probe_name="probe.py",
                               probe_content=TRIVIAL_PROBE, title=f"load {k}", harm_type="erasure")["id"]
                    for k in range(per_client)]

        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            ids = [i for batch in pool.map(client, tokens) for i in batch]
        submitted = time.perf_counter() - started
        terminal = (states.IN_REVIEW, states.FAILED, states.PLATFORM_ERROR)
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            if Submission.objects.filter(pk__in=ids, state__in=terminal).count() == len(ids):
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        measured = Submission.objects.filter(pk__in=ids, state=states.IN_REVIEW).count()
        runs = list(ProbeRun.objects.filter(submission_id__in=ids))
        waits = sorted((r.started_at - r.queued_at).total_seconds() for r in runs if r.started_at)
        print(json.dumps({
            "bench": "load", "clients": CLIENTS, "submissions": len(ids), "measured": measured,
            "runs": len(runs), "runs_repeated": sum(1 for r in runs if r.attempt > 1),
            "submit_s": round(submitted, 1), "total_s": round(elapsed, 1),
            "throughput_per_s": round(measured / elapsed, 2),
            "queue_wait_median_s": round(statistics.median(waits), 2) if waits else None,
            "queue_wait_p95_s": round(waits[int(0.95 * (len(waits) - 1))], 2) if waits else None,
        }), flush=True)


if __name__ == "__main__":
    main()
