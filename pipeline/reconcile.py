"""The main recovery path: re-send work the database says is pending but no live worker holds.

Re-sending is always safe: the tasks take a lease and compare-and-set before acting, so a task
that was in the broker after all finds the row moved (or the lease held) and leaves.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from bounty import services
from grading import services as grading_services
from grading.models import MEASUREMENT_IN_FLIGHT, Measurement
from pipeline.leases import lease_held
from pipeline.measurements import enqueue_measurement, split_lease_held
from sandbox.models import RUN_QUEUED, RUN_RUNNING, ProbeRun
from sandbox.runner import reap_stray_sandboxes


def reconcile() -> dict:
    grace = timezone.now() - timedelta(seconds=settings.REAPER_GRACE_S)
    report = {"runs_requeued": 0, "runs_restarted": 0, "measurements_requeued": 0, "sandboxes_reaped": 0}
    for run_id in ProbeRun.objects.filter(status=RUN_QUEUED, queued_at__lt=grace).values_list("pk", flat=True):
        services.enqueue_run(run_id=str(run_id))
        report["runs_requeued"] += 1
    for run in ProbeRun.objects.filter(status=RUN_RUNNING, started_at__lt=grace).only("pk"):
        if not lease_held("run", run.pk):
            services.enqueue_run(run_id=str(run.pk))  # its worker died: the task takes it over (an attempt)
            report["runs_restarted"] += 1
    stuck = Measurement.objects.filter(status__in=MEASUREMENT_IN_FLIGHT, created_at__lt=grace)
    for measurement_id in stuck.values_list("pk", flat=True):
        if lease_held("measurement", measurement_id) or split_lease_held(measurement_id):
            continue  # a live worker (or its chunk tasks) is on it
        grading_services.measurement_release(measurement_id=measurement_id)
        enqueue_measurement(measurement_id=measurement_id)
        report["measurements_requeued"] += 1
    max_age = settings.SANDBOX_MAX_WALL_S + settings.REAPER_GRACE_S
    report["sandboxes_reaped"] = len(reap_stray_sandboxes(older_than_s=max_age))
    return report
