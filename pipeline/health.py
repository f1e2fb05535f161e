"""The organizer's view of the pipeline: workers seen, queue length, work in flight."""
from __future__ import annotations

import redis
from celery import current_app
from django.conf import settings
from django.utils import timezone

from grading.models import MEASUREMENT_IN_FLIGHT, Measurement
from sandbox.models import RUN_QUEUED, RUN_RUNNING, ProbeRun


def worker_health() -> dict:
    """Workers seen, queue length, runs and measurements in flight, the oldest queued run.

    Workers come from Celery's inspection API (a broadcast answered within a second); the rest
    from the broker and the database, so the page answers even when no worker does.
    """
    workers, error = [], None
    try:
        inspect = current_app.control.inspect(timeout=1.0)
        active = inspect.active() or {}
        stats = inspect.stats() or {}
        for name in sorted(set(active) | set(stats)):
            pool = (stats.get(name) or {}).get("pool", {})
            workers.append({"name": name, "active": len(active.get(name) or []),
                            "concurrency": pool.get("max-concurrency"),
                            "tasks_done": sum((stats.get(name) or {}).get("total", {}).values())})
    except Exception as exc:  # noqa: BLE001 - shown on the page: the broker may be down
        error = f"the broker did not answer: {exc}"
    try:
        queue_length = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2).llen("celery")
    except redis.RedisError as exc:
        queue_length, error = None, error or f"the broker did not answer: {exc}"
    oldest = ProbeRun.objects.filter(status=RUN_QUEUED).order_by("queued_at").values_list("queued_at", flat=True).first()
    return {
        "workers": workers,
        "queue_length": queue_length,
        "runs_queued": ProbeRun.objects.filter(status=RUN_QUEUED).count(),
        "runs_running": ProbeRun.objects.filter(status=RUN_RUNNING).count(),
        "measurements_running": Measurement.objects.filter(status__in=MEASUREMENT_IN_FLIGHT).count(),
        "oldest_queued_s": round((timezone.now() - oldest).total_seconds(), 1) if oldest else None,
        "error": error,
    }
