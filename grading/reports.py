"""Reads of the model reports (grading.models.ModelReport): the stored report, the newest per
candidate, and a finding's verdicts for its page. Written by pipeline.reports."""
from __future__ import annotations

import json

from grading.models import REPORT_DONE, ModelReport


def report_content(report: ModelReport | None) -> dict | None:
    """The stored report (the contract's JSON) of a finished report, else None."""
    if report is None or report.status != REPORT_DONE or not report.report_json:
        return None
    return json.loads(report.report_json)


def reports_of(*, challenge):
    return ModelReport.objects.filter(challenge=challenge)


def latest_reports(*, challenge) -> list[ModelReport]:
    """The newest report of each candidate, newest first."""
    seen, latest = set(), []
    for report in reports_of(challenge=challenge).filter(audit=""):
        if report.candidate not in seen:
            seen.add(report.candidate)
            latest.append(report)
    return latest


def finding_verdicts(*, submission) -> list[dict]:
    """Per candidate, the newest finished report's verdicts on this finding: `{"candidate", "verdicts"}`."""
    seen, out = set(), []
    for report in reports_of(challenge=submission.challenge).filter(status=REPORT_DONE):
        if report.candidate in seen:
            continue
        seen.add(report.candidate)
        rows = [row for row in report_content(report)["findings"] if row["submission"] == submission.pk]
        if rows:
            by_verdict: dict[str, list[str]] = {}
            for row in rows:
                by_verdict.setdefault(row["verdict"], []).append(row["test"])
            out.append({"candidate": report.candidate, "report": report,
                        "verdicts": [{"verdict": v, "tests": tests} for v, tests in by_verdict.items()]})
    return out


__all__ = ["finding_verdicts", "latest_reports", "report_content", "reports_of"]
