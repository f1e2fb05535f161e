"""Probe runs and the image sets they emitted: the pipeline writes both (docs/architecture.md).

The tables kept their first names (`sandbox_proberun`, `sandbox_imageset`) when they moved here.
"""
from __future__ import annotations

import uuid

from django.db import models

from sandbox.status import RunStatus


class ProbeRun(models.Model):
    """One sandboxed execution of a submission's probe."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    submission = models.ForeignKey("bounty.Submission", on_delete=models.CASCADE, related_name="runs")
    backend = models.CharField(max_length=20)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    attempt = models.PositiveIntegerField(default=1)
    exit_code = models.IntegerField(null=True, blank=True)
    wall_s = models.FloatField(null=True, blank=True)
    stdout_tail = models.TextField(blank=True)
    stderr_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "sandbox_proberun"
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"run {self.id} ({self.status})"


class ImageSet(models.Model):
    """A validated image set copied out of a run's output directory."""

    run = models.OneToOneField(ProbeRun, on_delete=models.CASCADE, related_name="image_set")
    path = models.CharField(max_length=500, help_text="directory relative to VAR_DIR")
    n_images = models.PositiveIntegerField()
    title = models.CharField(max_length=300, blank=True)
    attribute = models.CharField(max_length=100, blank=True)
    groups = models.JSONField(default=list)
    manifest_sha256 = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "sandbox_imageset"
