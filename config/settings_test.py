"""Test settings: real PostgreSQL and Redis (see tests/conftest.py), short limits."""
import os
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cropbias")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
# Tests keep their runs, media and caches apart from a local `make run`.
os.environ.setdefault("VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

from config.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; argon2 is tested on its own
CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 60))
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": CELERY_VISIBILITY_TIMEOUT}  # noqa: F405
REAPER_GRACE_S = int(os.environ.get("REAPER_GRACE_S", 20))
# Small chunks, so the end-to-end tests split measurements into parallel chunk tasks (a chord).
MEASURE_CHUNK_SIZE = int(os.environ.get("MEASURE_CHUNK_SIZE", 16))
# ...by size alone: the fast test model would never be worth splitting by time.
MEASURE_CHUNK_TARGET_S = float(os.environ.get("MEASURE_CHUNK_TARGET_S", 0))
# Rate-limit counters live in the cache: a prefix per test session keeps runs from sharing them.
CACHES["default"]["KEY_PREFIX"] = f"cropbias-test-{os.getpid()}"  # noqa: F405
# The webhook tests' receivers listen on loopback; the refusal of internal targets is tested with it off.
WEBHOOK_ALLOW_PRIVATE = True
# No confirmatory run behind every measured example probe: the replication tests start a worker with it.
REPLICATION = os.environ.get("REPLICATION", "0") == "1"
