"""Leaderboard latency from outside: gunicorn on a throwaway PostgreSQL database, 100 to 100,000 rows.

One challenge grows to each size in turn (bulk_create, then VACUUM ANALYZE as autovacuum would);
at each size every view — first, later, deep and last pages, each sort the page offers, filtered
views — of the HTML page and of the API is timed with sequential HTTP requests after a warm-up,
and its SQL queries are counted in-process (CaptureQueriesContext). Prints one JSON line per view
at 10,000 and 100,000 rows, and one line per size with its slowest view (the scaling table).

    .venv/bin/python bench/bench_leaderboard.py [--sizes 100,1000,10000,100000] [--requests 40]
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import throwaway_platform  # noqa: E402

BENCH_DB = "cropbias_bench"
REDIS_DB = 12
HARMS = ["under-representation", "stereotyping", "denigration", "erasure", "mis-recognition"]
# p95 goals: 50 ms up to 10,000 published results, 100 ms at 100,000.
GOALS_MS = {100_000: 100}
DEFAULT_GOAL_MS = 50
# Views, with the page as "deep" (the middle of the board) or "last" resolved per size and filter.
VIEWS = [
    {}, {"page": "2"}, {"page": "deep"}, {"page": "last"},
    *({"sort": sort, "page": page} for sort in ["-rank", "date", "-date", "title", "-title", "provisional"]
      for page in ["1", "2", "deep"]),
    {"harm": "stereotyping"}, {"harm": "stereotyping", "page": "deep"}, {"harm": "erasure", "sort": "title", "page": "2"},
    {"q": "team 07"}, {"q": "p042"}, {"q": "Finding 12"},
]


def fill(challenge, users, teams, start: int, stop: int) -> None:
    """Published results start..stop-1: 200 participants, a third of them in one of 20 teams."""
    from django.db import connection
    from django.utils import timezone

    from bounty import states
    from bounty.models import Submission

    origin = timezone.now() - timedelta(days=60)
    batch = [Submission(
        challenge=challenge, participant=users[i % len(users)], team=teams[i % len(teams)] if i % 3 == 0 else None,
        title=f"Finding {i}", probe=f"probes/bench/{i}.py", probe_sha256=f"sha256:{i:064x}",
        harm_type=HARMS[i % len(HARMS)], state=states.PUBLISHED,
        # Scores on a coarse grid so ties are common, as with a rubric's discrete levels.
        final_score=round((i * 7919 % 1000) / 10, 1), provisional_score=round((i * 104729 % 1000) / 10, 1),
        published_at=origin + timedelta(seconds=i * 37),
    ) for i in range(start, stop)]
    Submission.objects.bulk_create(batch, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE bounty_submission")  # what autovacuum does after a bulk load


def resolve(view: dict, count_for) -> str:
    params = dict(view)
    if params.get("page") in ("deep", "last"):
        pages = max(1, -(-count_for(params) // 50))
        params["page"] = str(pages if params["page"] == "last" else max(1, pages // 2))
    from urllib.parse import urlencode

    return "?" + urlencode(params) if params else ""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    """One GET on the kept-alive connection; reconnects once when the server closed it while idle."""
    for attempt in (1, 2):
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def time_view(conn: http.client.HTTPConnection, path: str, n: int) -> list[float]:
    get(conn, path)  # (re)open the connection outside the timings
    timings = []
    for i in range(n + 2):  # two more warm-up requests, not timed
        started = time.perf_counter()
        status, body = get(conn, path)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise SystemExit(f"{path} answered {status}: {body[:300]!r}")
        if i >= 2:
            timings.append(elapsed)
    return timings


def count_queries(client, path: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code} in-process")
    return len(queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000,100000")
    parser.add_argument("--requests", type=int, default=40, help="per view at 10,000 rows and more")
    parser.add_argument("--small-requests", type=int, default=40, help="per view below 10,000 rows (a p95 needs enough samples)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    started_all = time.perf_counter()

    with throwaway_platform(BENCH_DB, redis_db=REDIS_DB, workers=1, web=True) as platform:
        from django.contrib.auth import get_user_model
        from django.test import Client

        from bounty import leaderboard, states
        from bounty.models import Challenge, Team

        challenge = Challenge.objects.create(slug="bench", title="Bench", state=states.OPEN,
                                             model_name="spectral-residual", show_provisional=True)
        User = get_user_model()
        users = User.objects.bulk_create([User(username=f"p{i:03d}", email=f"p{i}@example.org") for i in range(200)])
        teams = Team.objects.bulk_create([Team(name=f"team {i:02d}") for i in range(20)])
        host, port = platform["url"].removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        client = Client()
        endpoints = {"page": f"/challenges/{challenge.slug}/leaderboard/",
                     "api": f"/api/challenges/{challenge.slug}/leaderboard/"}

        def count_for(params: dict) -> int:
            query = leaderboard.LeaderboardQuery.from_params(params)
            return leaderboard.leaderboard_queryset(challenge=challenge, query=query).count()

        filled = 0
        for size in sizes:
            fill_started = time.perf_counter()
            fill(challenge, users, teams, filled, size)
            filled, fill_s = size, time.perf_counter() - fill_started
            n = args.requests if size >= 10_000 else args.small_requests
            goal = GOALS_MS.get(size, DEFAULT_GOAL_MS)
            lines = []
            for view in VIEWS:
                query = resolve(view, count_for)
                for endpoint, base in endpoints.items():
                    timings = time_view(conn, base + query, n)
                    p95 = percentile(timings, 0.95)
                    lines.append({"bench": "leaderboard", "rows": size, "endpoint": endpoint, "view": query or "/",
                                  "requests": n, "median_ms": round(statistics.median(timings), 2),
                                  "p95_ms": round(p95, 2), "goal_p95_ms": goal,
                                  "queries": count_queries(client, base + query), "met": p95 <= goal,
                                  "detail": True})  # the size's worst-view line below sums these up
            if size >= 10_000:
                for line in lines:
                    print(json.dumps(line), flush=True)
            worst = max(lines, key=lambda line: line["p95_ms"])
            print(json.dumps({"bench": "leaderboard", "rows": size, "endpoint": "worst of page and api",
                              "view": f"worst of {len(lines)}: {worst['endpoint']} {worst['view']}",
                              "requests": n, "median_ms": round(statistics.median(x["median_ms"] for x in lines), 2),
                              "p95_ms": worst["p95_ms"], "goal_p95_ms": goal,
                              "queries": sorted({x["queries"] for x in lines}), "met": all(x["met"] for x in lines),
                              "fill_s": round(fill_s, 1)}), flush=True)
        conn.close()
    print(json.dumps({"bench": "leaderboard", "rows": "all", "total_s": round(time.perf_counter() - started_all, 1)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
