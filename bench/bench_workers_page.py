"""The organizer's workers page, timed from outside: gunicorn, a live worker, the HTML page and its JSON.

Cold = the first load of each with nothing cached (the workers' snapshot deleted before it);
then repeated loads, alternating HTML and JSON, over a span longer than the snapshot's freshness
(pipeline.health.WORKERS_FRESH_S), so stale loads that start a background refresh are among them.
Prints one JSON line with the p95 and the cold loads beside the goal (GOAL_MS per load).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import throwaway_platform  # noqa: E402

GOAL_MS = 300.0
LOADS = int(os.environ.get("BENCH_WORKERS_LOADS", 60))
SPACING_S = 0.12


def _organizer_session() -> str:
    """A logged-in organizer's session key, made in the database the web server reads."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from bounty import states
    from bounty.models import Challenge
    from probekit import get_model

    model = get_model("spectral-residual")
    user = get_user_model().objects.create_user("bench-organizer", password="bench-password-1")
    challenge = Challenge.objects.create(slug="bench", title="bench", state=states.OPEN, model_name=model.name,
                                         model_version=model.version)
    challenge.organizers.add(user)
    session = SessionStore()
    session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                    HASH_SESSION_KEY: user.get_session_auth_hash()})
    session.create()
    return session.session_key


def _wait_for_worker(timeout_s: float = 120) -> None:
    from celery import current_app

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if current_app.control.ping(timeout=0.5):
            return
    raise SystemExit("no worker answered a ping")


def main() -> None:
    import requests

    with throwaway_platform(os.environ.get("BENCH_WORKERS_DB", "cropbias_bench_workers"),
                            redis_db=int(os.environ.get("BENCH_REDIS_DB", 13)), workers=1, web=True) as platform:
        from django.conf import settings
        from django.core.cache import cache

        from pipeline import health

        http = requests.Session()
        http.cookies.set(settings.SESSION_COOKIE_NAME, _organizer_session())
        _wait_for_worker()
        page = f"{platform['url']}/organizer/workers/"

        def load(url: str) -> float:
            started = time.perf_counter()
            response = http.get(url, timeout=30, allow_redirects=False)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}")
            return elapsed

        load(f"{platform['url']}/")  # both web processes imported, the connection open
        cold = {}
        for name, url in (("html", page), ("json", f"{page}?format=json")):
            cache.delete(health.WORKERS_CACHE_KEY)
            cache.delete(health.REFRESH_LOCK_KEY)
            cold[name] = load(url)
        times = []
        for k in range(LOADS):
            times.append(load(page if k % 2 == 0 else f"{page}?format=json"))
            time.sleep(SPACING_S)
        answered = http.get(f"{page}?format=json", timeout=30).json()
        p95 = statistics.quantiles(times, n=20)[-1]
        worst = max(p95, *cold.values())
        print(json.dumps({"bench": "workers_page", "loads": len(times), "cold_html_ms": round(cold["html"], 1),
                          "cold_json_ms": round(cold["json"], 1), "median_ms": round(statistics.median(times), 1),
                          "p95_ms": round(p95, 1), "goal_ms": GOAL_MS, "met": worst <= GOAL_MS,
                          "workers_seen": len(answered["workers"])}), flush=True)


if __name__ == "__main__":
    main()
