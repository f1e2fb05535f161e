"""Reads of grading's own rows: which measurement speaks for a submission, its document, its files.

Every page, the API, the rubric and the judge console choose "the submission's measurement"
here, so participants and judges always look at the same document.
"""
from __future__ import annotations

import json
import re

import blobs
from grading.models import Measurement, MeasurementStatus

# Plots and contact sheets a measurement renders (probekit.measurement._artifacts); nothing else is served.
ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.png$")


def measurement_of_record(*, submission) -> Measurement | None:
    """The submission's own measurement: the newest finished one that is not a judge's re-run,
    else its newest unfinished one (None before the probe ran). Re-runs sit beside it."""
    own = submission.measurements.filter(rerun_of__isnull=True).select_related("image_set")
    return own.filter(status=MeasurementStatus.DONE).first() or own.first()


def document_of(measurement: Measurement | None) -> dict | None:
    """The metrics document of a finished measurement, parsed (None otherwise)."""
    if measurement is None or measurement.status != MeasurementStatus.DONE or not measurement.document_json:
        return None
    return json.loads(measurement.document_json)


def artifacts_key(*, measurement_id: int) -> str:
    """Where a measurement's plots and contact sheet are stored (blobs)."""
    return blobs.key_of(blobs.ARTIFACTS, f"measurement-{measurement_id}")


def artifact_names(*, measurement: Measurement | None) -> list[str]:
    """The PNG files rendered for a measurement, by name."""
    if measurement is None:
        return []
    return [name for name in blobs.tree_names(artifacts_key(measurement_id=measurement.pk))
            if ARTIFACT_NAME.match(name)]


def artifact_open(*, measurement: Measurement, filename: str):
    """The open file of one artifact of `measurement`, or None for any other name."""
    if not ARTIFACT_NAME.match(filename):
        return None
    return blobs.open_blob(f"{artifacts_key(measurement_id=measurement.pk)}/{filename}")
