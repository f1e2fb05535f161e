"""The main recovery path: re-send work the database says is pending but no live worker holds.

Runs: queued past the grace, or running without their Redis lease (the worker died: the task
takes the run over as the next attempt). Measurements: pending past the grace, or running with an
expired lease in their row; model reports the same. Stray sandboxes whose supervisor died are reaped.

Re-sending is always safe: the tasks take a lease and compare-and-set before acting, so a task
that was in the broker after all finds the row moved (or the lease held) and leaves.
"""
from __future__ import annotations

from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.utils import timezone

from grading import services as grading_services
from pipeline import reports
from pipeline.leases import lease_held
from pipeline.measurements import enqueue_measurement
from pipeline.models import ProbeRun
from pipeline.queue import enqueue_run
from sandbox.runner import reap_stray_sandboxes
from sandbox.status import RunStatus


def reconcile() -> dict:
    grace = timezone.now() - timedelta(seconds=settings.REAPER_GRACE_S)
    report = {"runs_requeued": 0, "runs_restarted": 0, "measurements_requeued": 0, "reports_requeued": 0,
              "sandboxes_reaped": 0}
    for run_id in ProbeRun.objects.filter(status=RunStatus.QUEUED, queued_at__lt=grace).values_list("pk", flat=True):
        enqueue_run(run_id=str(run_id))
        report["runs_requeued"] += 1
    for run in ProbeRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=grace).only("pk"):
        if not lease_held("run", run.pk):
            enqueue_run(run_id=str(run.pk))  # its worker died: the task takes it over (an attempt)
            report["runs_restarted"] += 1
    # Only measurements nobody holds: a live lease (renewed by its worker or its chunks) is left alone.
    for measurement_id in grading_services.measurements_to_resend(older_than=grace):
        enqueue_measurement(measurement_id=measurement_id)
        report["measurements_requeued"] += 1
    # Model reports likewise: pending past the grace, or running with an expired lease (taken over).
    for report_id in reports.reports_to_resend(older_than=grace):
        current_app.send_task(reports.REPORT_TASK, args=[report_id], queue=settings.CELERY_BULK_QUEUE)
        report["reports_requeued"] += 1
    max_age = settings.SANDBOX_MAX_WALL_S + settings.REAPER_GRACE_S
    report["sandboxes_reaped"] = len(reap_stray_sandboxes(older_than_s=max_age))
    return report
