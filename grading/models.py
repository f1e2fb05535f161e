"""Measurements, scores and registered models."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class MeasurementStatus(models.TextChoices):
    """A measurement's status: the one place its names are spelled."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


# Not finished yet: a worker may still change it.
MEASUREMENT_IN_FLIGHT = (MeasurementStatus.PENDING, MeasurementStatus.RUNNING)


class Measurement(models.Model):
    """The metrics document of one image set on the challenge's target (docs/statistics.md)."""

    submission = models.ForeignKey("bounty.Submission", on_delete=models.CASCADE, related_name="measurements")
    image_set = models.ForeignKey("pipeline.ImageSet", on_delete=models.CASCADE, related_name="measurements")
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(max_length=100, blank=True)
    seed = models.IntegerField(default=0)
    # A judge's re-run (same probe, same model version) points at the measurement it repeats.
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="reruns")
    status = models.CharField(max_length=20, choices=MeasurementStatus.choices, default=MeasurementStatus.PENDING, db_index=True)
    # Deliveries that started computing it (a worker lost mid-way makes the next one attempt 2).
    attempts = models.PositiveIntegerField(default=0)
    # The lease: who computes it and until when (renewed while it works). Kept in the database,
    # not the broker, so a Redis restart cannot hand a live measurement to a second worker.
    lease_holder = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # Stored as text, byte for byte as produced, so the document's hash stays checkable.
    document_json = models.TextField(blank=True)
    document_sha256 = models.CharField(max_length=80, blank=True)
    manifest_sha256 = models.CharField(max_length=80, blank=True)
    probe_sha256 = models.CharField(max_length=80, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class Score(models.Model):
    """A computed score: provisional (from the measurement) or final (from judges)."""

    PROVISIONAL = "provisional"
    FINAL = "final"
    submission = models.ForeignKey("bounty.Submission", on_delete=models.CASCADE, related_name="scores")
    kind = models.CharField(max_length=20, choices=[(PROVISIONAL, "Provisional"), (FINAL, "Final")])
    value = models.FloatField()
    rubric = models.CharField(max_length=100)
    breakdown = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class RegisteredModel(models.Model):
    """The record of an organizer's registered ONNX model; its files live in PROBEKIT_MODELS_DIR/<name>/."""

    name = models.CharField(max_length=64, unique=True)
    version = models.CharField(max_length=32)
    sha256 = models.CharField(max_length=80)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


# A model report's status names (docs/statistics.md, "The model report").
class ReportStatus(models.TextChoices):
    """A model report's status: the one place its names are spelled."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


REPORT_PENDING, REPORT_RUNNING, REPORT_DONE, REPORT_FAILED = (ReportStatus.PENDING, ReportStatus.RUNNING,
                                                              ReportStatus.DONE, ReportStatus.FAILED)
REPORT_STATUSES = ReportStatus.choices


class ModelReport(models.Model):
    """A challenge's accepted and published findings re-measured on a candidate model.

    `report_json` is written once, whole, when every finding is measured; a report that fails
    keeps its error and no report. `audit` groups the reports of one compression audit."""

    challenge = models.ForeignKey("bounty.Challenge", on_delete=models.CASCADE, related_name="model_reports")
    model_name = models.CharField(max_length=100)
    candidate = models.CharField(max_length=100)
    candidate_version = models.CharField(max_length=100, blank=True)
    audit = models.CharField(max_length=40, blank=True, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    status = models.CharField(max_length=20, choices=REPORT_STATUSES, default=REPORT_PENDING, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # Who computes it and until when (renewed while it works): a lost worker's report is taken over.
    lease_holder = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    report_json = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.candidate} on {self.model_name}"


class ReplicationStatus(models.TextChoices):
    """A replication's status (probekit.replication): the one place its names are spelled here."""

    PENDING = "pending", "Pending"
    REPLICATED = "replicated", "Replicated"
    NOT_REPLICATED = "not_replicated", "Not replicated"
    SAME_DRAW = "same_draw", "Same draw"
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    FAILED = "failed", "Failed"


class Replication(models.Model):
    """The confirmatory run of a submission's probe on a fresh secret seed, and its verdict.

    `seed` is secret while `status` is pending (the API shows it once final); `measurement` is the
    first draw's measurement, `confirmatory` the second set's (a re-run of it, measured on bulk)."""

    submission = models.OneToOneField("bounty.Submission", on_delete=models.CASCADE, related_name="replication")
    measurement = models.ForeignKey(Measurement, on_delete=models.CASCADE, related_name="replications")
    confirmatory = models.OneToOneField(Measurement, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="confirmatory_of")
    status = models.CharField(max_length=20, choices=ReplicationStatus.choices, default=ReplicationStatus.PENDING,
                              db_index=True)
    seed = models.BigIntegerField(null=True, blank=True)
    tests = models.JSONField(default=list, blank=True)
    document_sha256 = models.CharField(max_length=80, blank=True)
    reason = models.TextField(blank=True)
    robustness = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"replication of submission {self.submission_id} ({self.status})"
