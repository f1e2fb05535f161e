"""Reads of grading's own rows: which measurement speaks for a submission, its document, its files.

Every page, the API, the rubric and the judge console choose "the submission's measurement"
here, so participants and judges always look at the same document.
"""
from __future__ import annotations

import json
import re

import blobs
from grading.models import Measurement, MeasurementStatus, Replication
from probekit.replication import FINAL

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


def replication_of(*, submission) -> dict | None:
    """`{"status", "tests", "document_sha256", "seed", "reason"}` of the submission's replication
    (None before its first measurement is stored). The seed stays secret until the status is final."""
    return findings_checks(submission=submission)["replication"]


def findings_checks(*, submission) -> dict:
    """`{"replication": …, "robustness": {"status", "tests"}}` of the submission, from one row (each None
    before the first measurement is stored)."""
    replication = Replication.objects.filter(submission=submission).first()
    if replication is None:
        return {"replication": None, "robustness": None}
    final = replication.status in FINAL
    return {"replication": {"status": replication.status, "tests": replication.tests,
                            "document_sha256": replication.document_sha256 or None,
                            "seed": replication.seed if final else None, "reason": replication.reason},
            "robustness": replication.robustness or None}


def _interval(test: dict) -> str:
    estimate, ci = test.get("estimate"), test.get("ci") or [None, None]
    if estimate is None:
        return "no estimate"
    if None in ci:
        return f"{estimate:.2f}"
    return f"{estimate:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


REPLICATION_WORDS = {
    "pending": "Replication on a fresh draw is pending: the probe is being run again with a new secret seed.",
    "replicated": "Came back on a fresh draw: {detail}.",
    "not_replicated": "Did not come back on a fresh draw: {detail}.",
    "same_draw": "Could not be replicated on fresh subjects: the probe ignores PROBE_SEED, so its second run drew "
                 "the same images (draw them from probekit.seed()).",
    "not_applicable": "Nothing was significant on the first draw, so there was nothing to replicate.",
    "failed": "The replication on a fresh draw failed: {reason}",
}


def replication_view(*, data: dict | None, document: dict | None, robustness: dict | None = None) -> dict | None:
    """The replication for pages (`data`: replication_of's JSON): with one sentence in plain words, and
    per confirmatory test the first estimate beside the second (the judge page's table)."""
    if data is None:
        return None
    first = {t["id"]: t for t in (document or {}).get("tests", [])}
    rows = [{"id": t["id"], "first": _interval(first.get(t["id"], {})), "first_p_holm": first.get(t["id"], {}).get(
        "p_holm"), "second": _interval(t), "p_holm": t.get("p_holm"), "same_direction": t.get("same_direction")}
        for t in data["tests"]]
    detail = "; ".join(f"{row['id']} {row['second']}" for row in rows) or "no test"
    words = REPLICATION_WORDS.get(data["status"], "{reason}").format(detail=detail, reason=data["reason"])
    return {**data, "words": words, "rows": rows, "robustness": robustness_rows(robustness)}


def robustness_rows(robustness: dict | None) -> list[dict]:
    """Per test: its verdict in words ("robust to pad, mirror, jpeg and scale" / "fragile: broken by …")."""
    rows = []
    for test_id, row in ((robustness or {}).get("tests") or {}).items():
        words = ("holds under padding, mirroring, JPEG re-encoding and scaling" if row["verdict"] == "robust"
                 else "fragile: broken by " + ", ".join(row["broken_by"]))
        rows.append({"id": test_id, "verdict": row["verdict"], "words": words,
                     "changes": {c: row.get(c) for c in ("pad", "mirror", "jpeg", "scale")}})
    return rows



def replication_status(*, submission) -> str | None:
    """The submission's replication status (None without one): the rubric's statistical factor reads it."""
    return Replication.objects.filter(submission=submission).values_list("status", flat=True).first()


def measured_replication(*, submission) -> Replication | None:
    """The submission's final replication whose confirmatory set was measured (replicated or not), with
    that measurement and its image set loaded; None otherwise (the bundle then carries one document)."""
    return Replication.objects.select_related("confirmatory__image_set").filter(
        submission=submission, status__in=("replicated", "not_replicated"),
        confirmatory__status=MeasurementStatus.DONE).first()
