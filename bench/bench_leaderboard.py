"""Leaderboard latency at 10,000 published submissions, in a throwaway PostgreSQL database.

Creates `cropbias_bench` next to the configured database, migrates it, fills one challenge with
ROWS published submissions (bulk_create), times N requests of the public page through Django's
test Client (first pages, a deep page, filtered and re-sorted views), prints one JSON line and
drops the database.

    .venv/bin/python bench/bench_leaderboard.py [--rows 10000] [--requests 50]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import dj_database_url
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "cropbias_bench"


def admin_connection(config: dict) -> psycopg.Connection:
    """A connection to the server's maintenance database, to create and drop the bench database."""
    return psycopg.connect(host=config["HOST"] or "127.0.0.1", port=config["PORT"] or 5432,
                           user=config["USER"] or "postgres", password=config["PASSWORD"] or None,
                           dbname="postgres", autocommit=True, connect_timeout=10)


def drop_database(config: dict) -> None:
    with admin_connection(config) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))


def fill(rows: int) -> str:
    """One open challenge with `rows` published results from 200 participants and 20 teams."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from bounty import states
    from bounty.models import Challenge, Submission, Team

    challenge = Challenge.objects.create(slug="bench", title="Bench", state=states.OPEN,
                                         model_name="spectral-residual", show_provisional=True)
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"p{i:03d}", email=f"p{i}@example.org") for i in range(200)])
    teams = Team.objects.bulk_create([Team(name=f"team {i:02d}") for i in range(20)])
    harms = ["under-representation", "stereotyping", "denigration", "erasure", "mis-recognition"]
    start = timezone.now() - timedelta(days=60)
    batch = []
    for i in range(rows):
        batch.append(Submission(
            challenge=challenge, participant=users[i % len(users)], team=teams[i % len(teams)] if i % 3 == 0 else None,
            title=f"Finding {i}", probe=f"probes/bench/{i}.py", probe_sha256=f"sha256:{i:064x}",
            harm_type=harms[i % len(harms)], state=states.PUBLISHED,
            # Scores on a coarse grid so ties are common, as with a rubric's discrete levels.
            final_score=round((i * 7919 % 1000) / 10, 1), provisional_score=round((i * 104729 % 1000) / 10, 1),
            published_at=start + timedelta(seconds=i * 37),
        ))
    Submission.objects.bulk_create(batch, batch_size=2000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum would have done by the time 10,000 rows exist
    return challenge.slug


def time_requests(slug: str, n: int) -> list[float]:
    from django.test import Client

    client = Client()
    views = ["", "?page=2", "?page=150", "?sort=-date", "?harm=stereotyping", "?q=team+07", "?sort=provisional"]
    client.get(f"/challenges/{slug}/leaderboard/")  # warm: templates, connection
    timings = []
    for i in range(n):
        started = time.perf_counter()
        response = client.get(f"/challenges/{slug}/leaderboard/{views[i % len(views)]}")
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"leaderboard answered {response.status_code}")
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    base = dj_database_url.parse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cropbias"))
    drop_database(base)  # a previous run that was killed
    with admin_connection(base) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    user = base["USER"] or "postgres"
    auth = f"{user}:{base['PASSWORD']}@" if base["PASSWORD"] else f"{user}@"
    os.environ["DATABASE_URL"] = f"postgres://{auth}{base['HOST'] or '127.0.0.1'}:{base['PORT'] or 5432}/{BENCH_DB}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    sys.path.insert(0, str(ROOT))
    try:
        import django
        from django.core.management import call_command
        from django.db import connections

        django.setup()
        call_command("migrate", verbosity=0)
        slug = fill(args.rows)
        timings = time_requests(slug, args.requests)
        connections.close_all()
    finally:
        drop_database(base)
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered) + 0.5)) - 1)]
    print(json.dumps({"bench": "leaderboard", "rows": args.rows, "requests": args.requests,
                      "median_ms": round(statistics.median(timings), 2), "p95_ms": round(p95, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
