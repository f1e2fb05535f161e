"""Start a service of the platform only once the database is migrated and the bucket exists.

    python scripts/wait_for_stack.py COMMAND [ARG...]
    python scripts/wait_for_stack.py --reachable COMMAND [ARG...]   (the migrate step itself)

compose.yaml orders the app services after the one-shot `migrate` step with depends_on
conditions; not every compose client honours them (podman-compose 1.0 starts in order without
waiting), and a restarted container does not consult them at all. This waits until no migration
is left unapplied and the S3 bucket (S3_BUCKET, when set) answers, then replaces itself with the
command. With --reachable it waits only until the database and the S3 endpoint answer: what
the `migrate` step needs before it migrates and creates the bucket. WAIT_TIMEOUT_S (default 300)
bounds the wait; past it the command is not started.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def pending(*, reachable_only: bool) -> str:
    """What is still missing (empty when the stack is ready)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001 - the database is not up yet, whatever the error
        connection.close()
        return f"database: {exc.__class__.__name__}"
    if plan and not reachable_only:
        return f"{len(plan)} migrations not applied"
    bucket = os.environ.get("S3_BUCKET", "")
    if bucket:
        import boto3

        client = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
                              region_name=os.environ.get("S3_REGION", "us-east-1"))
        try:
            if reachable_only:
                client.list_buckets()
            else:
                client.head_bucket(Bucket=bucket)
        except Exception as exc:  # noqa: BLE001 - not up yet, or the bucket not made yet
            return f"bucket {bucket!r}: {exc.__class__.__name__}"
    return ""


def main(argv: list[str]) -> int:
    reachable_only = argv[:1] == ["--reachable"]
    argv = argv[1:] if reachable_only else argv
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    import django

    django.setup()
    deadline = time.monotonic() + float(os.environ.get("WAIT_TIMEOUT_S", 300))
    last = None
    while missing := pending(reachable_only=reachable_only):
        if missing != last:
            print(f"waiting for the stack: {missing}", flush=True)
            last = missing
        if time.monotonic() > deadline:
            print(f"gave up waiting: {missing}", file=sys.stderr)
            return 1
        time.sleep(1)
    from django.db import connection

    connection.close()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
