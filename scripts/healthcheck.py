"""Health checks of compose.yaml's services that have no tool of their own for it.

    python scripts/healthcheck.py web|s3|flower|beat     exit 0 when healthy

One short command per service, with no quoting inside it: compose clients differ in how they pass
a health check's arguments through a shell (podman-compose 1.0 breaks on quotes and parentheses),
so the logic lives here. Standard library only, besides redis for beat's broker.
"""
from __future__ import annotations

import base64
import glob
import os
import sys
import urllib.request


def get(url: str, headers: dict | None = None) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
        response.read()


def web() -> None:
    get("http://127.0.0.1:8000/")


def s3() -> None:
    get("http://127.0.0.1:5000/moto-api/")


def flower() -> None:
    auth = base64.b64encode(os.environ["FLOWER_BASIC_AUTH"].encode()).decode()
    get("http://127.0.0.1:5555/healthcheck", {"Authorization": f"Basic {auth}"})


def beat() -> None:
    """Beat has written its schedule and the broker answers."""
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5).ping()
    if not glob.glob("/var/lib/cropbias/celerybeat-schedule*"):
        raise RuntimeError("no schedule file yet")


CHECKS = {"web": web, "s3": s3, "flower": flower, "beat": beat}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: healthcheck.py {'|'.join(CHECKS)}", file=sys.stderr)
        return 2
    try:
        CHECKS[argv[0]]()
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", with its reason
        print(f"{argv[0]}: {exc.__class__.__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
