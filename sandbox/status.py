"""A probe run's status: the one place its names are spelled (docs/architecture.md, probe run).

The backends report the finished ones (`RunResult.status`); the pipeline's `ProbeRun` table
stores all of them and takes its choices from here, because the sandbox sits below it.
"""
from __future__ import annotations

from django.db import models


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    ERROR = "error", "Error"
    TIMEOUT = "timeout", "Timeout"
    LIMIT_EXCEEDED = "limit_exceeded", "Limit exceeded"
    REJECTED = "rejected", "Rejected"
    PLATFORM_ERROR = "platform_error", "Platform error"
    CANCELLED = "cancelled", "Cancelled"


# A run not finished yet: a worker may still change it.
RUN_IN_FLIGHT = (RunStatus.QUEUED, RunStatus.RUNNING)
