"""The organizer's view of the pipeline: workers seen, queue lengths, work in flight.

Which workers are up comes from Celery's inspection broadcast, which waits its whole timeout
for replies: too slow for any page load. So no load ever waits for it: the answer is kept in
Django's cache (Redis) and shared by every web process; a snapshot younger than WORKERS_FRESH_S
is served as is; an older one is still served, with its age, while one process refreshes it in
the background; with no snapshot at all (the first load, or after WORKERS_KEEP_S) the load says
the workers are being asked (`checking`) and the refresh runs in the background too. Queue
lengths and the database counts are read on every load (they are cheap).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis
from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from grading.models import MEASUREMENT_IN_FLIGHT, Measurement
from pipeline.models import ProbeRun
from sandbox.status import RunStatus

INSPECT_TIMEOUT_S = 0.5  # each broadcast waits this long for replies (both are sent at once)
WORKERS_FRESH_S = 5.0  # a snapshot this young is served without asking the workers again
WORKERS_KEEP_S = 3600  # an older snapshot is served (its age shown) while a refresh runs
WORKERS_CACHE_KEY = "pipeline:workers-snapshot"
REFRESH_LOCK_KEY = "pipeline:workers-refreshing"

_broadcasts = 0
_broadcasts_lock = threading.Lock()


def broadcast_count() -> int:
    """How many inspection broadcasts this process has sent (tests read it; no timing needed)."""
    return _broadcasts


def _broadcast(method: str) -> dict:
    global _broadcasts
    with _broadcasts_lock:
        _broadcasts += 1
    return getattr(current_app.control.inspect(timeout=INSPECT_TIMEOUT_S), method)() or {}


def workers_inspect() -> dict:
    """Ask the workers now: `active` and `stats` in parallel, so the wait is one timeout, not two."""
    at = time.time()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            active, stats = pool.map(_broadcast, ("active", "stats"))
    except Exception as exc:  # noqa: BLE001 - shown on the page: the broker may be down
        return {"workers": [], "at": at, "error": f"the broker did not answer: {exc}"}
    workers = []
    for name in sorted(set(active) | set(stats)):
        pool_stats = (stats.get(name) or {}).get("pool", {})
        workers.append({"name": name, "active": len(active.get(name) or []),
                        "concurrency": pool_stats.get("max-concurrency"),
                        "tasks_done": sum((stats.get(name) or {}).get("total", {}).values())})
    return {"workers": workers, "at": at, "error": None}


def workers_refresh() -> dict:
    snapshot = workers_inspect()
    try:
        cache.set(WORKERS_CACHE_KEY, snapshot, timeout=WORKERS_KEEP_S)
        cache.delete(REFRESH_LOCK_KEY)
    except Exception:  # noqa: BLE001 - no cache: the snapshot is still this load's answer
        pass
    return snapshot


def workers_snapshot() -> dict:
    """The workers as last seen (fresh, or stale while one refresh runs in the background), else the
    `checking` state while the first inspection runs in the background; never waits for the workers."""
    try:
        snapshot = cache.get(WORKERS_CACHE_KEY)
        # add() is atomic in Redis: one process refreshes; the lock expires should that refresh die.
        due = snapshot is None or time.time() - snapshot["at"] > WORKERS_FRESH_S
        if due and cache.add(REFRESH_LOCK_KEY, 1, timeout=max(WORKERS_FRESH_S, 4 * INSPECT_TIMEOUT_S)):
            threading.Thread(target=workers_refresh, name="workers-refresh", daemon=True).start()
    except Exception as exc:  # noqa: BLE001 - the cache is Redis, as is the broker: say what failed
        return {"workers": [], "at": None, "error": f"the cache did not answer: {exc}"}
    if snapshot is None:
        return {"workers": [], "at": None, "error": None, "checking": True}
    return snapshot


def queue_lengths() -> dict[str, int | None]:
    """Messages waiting in each queue every worker consumes (CELERY_TASK_QUEUES); None if the broker is down."""
    names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    try:
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
        with broker.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
            return dict(zip(names, pipe.execute()))
    except redis.RedisError:
        return dict.fromkeys(names)


def worker_health() -> dict:
    """Workers seen (and how old that answer is), queue lengths, runs and measurements in flight, the oldest queued run.

    The workers come from the cached inspection (never awaited: `workers_snapshot`); the rest from
    the broker and the database, so the page answers at once even when no worker does.
    """
    snapshot = workers_snapshot()
    lengths = queue_lengths()
    at = snapshot["at"]
    error = snapshot["error"]
    if None in lengths.values():
        error = error or "the broker did not answer: its queue lengths are unknown"
    oldest = ProbeRun.objects.filter(status=RunStatus.QUEUED).order_by("queued_at").values_list("queued_at", flat=True).first()
    return {
        "workers": snapshot["workers"],
        # None with no answer yet: `workers_checking` says one is being asked for
        "workers_age_s": None if at is None else round(max(0.0, time.time() - at), 1),
        "workers_checking": bool(snapshot.get("checking")),
        "queue_length": None if None in lengths.values() else sum(lengths.values()),
        "queue_lengths": lengths,
        "runs_queued": ProbeRun.objects.filter(status=RunStatus.QUEUED).count(),
        "runs_running": ProbeRun.objects.filter(status=RunStatus.RUNNING).count(),
        "measurements_running": Measurement.objects.filter(status__in=MEASUREMENT_IN_FLIGHT).count(),
        "oldest_queued_s": round((timezone.now() - oldest).total_seconds(), 1) if oldest else None,
        "error": error,
    }
