"""The challenge's models page, `/challenges/<slug>/models/`: model reports for organizers and judges.

Organizers and judges of the challenge (and superusers) see it; everyone else gets 404, as in the
judge console. Organizers start a report or a compression audit from it (a Celery task on the
bulk queue); the page shows progress, a plot of each finding's disparity before and after with
intervals and verdict colours, a CSV download, and the same report in the API
(`GET /api/challenges/<slug>/models/`).
"""
from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from bounty import selectors as bounty_selectors
from grading.models import REPORT_PENDING, REPORT_RUNNING, ModelReport
from grading.reports import latest_reports, report_content, reports_of
from pipeline import reports

PARITY = {"preference": 0.5, "position": 0.5}
VERDICT_COLOURS = {"fixed": "#1a7f37", "improved": "#4ac26b", "unchanged": "#6e7781", "worse": "#cf222e",
                   "new": "#bc4c00", None: "#24292f"}
PLOT_WIDTH, ROW_HEIGHT, LABEL_WIDTH, MARGIN = 640, 26, 260, 12
CSV_COLUMNS = ["submission", "test", "before_estimate", "before_ci_low", "before_ci_high", "before_p_holm",
               "after_estimate", "after_ci_low", "after_ci_high", "after_p_holm", "abs_disparity_change",
               "change_ci_low", "change_ci_high", "verdict"]


def _challenge_for_viewer(*, slug: str, user):
    challenge = bounty_selectors.challenge_get(slug=slug)
    if not bounty_selectors.user_can_judge(user=user, challenge=challenge):
        raise Http404("No such page.")
    return challenge


def _may_start(*, user, challenge) -> bool:
    return user.is_superuser or challenge.organizers.filter(pk=user.pk).exists()


def _kind(test_id: str) -> str:
    return test_id.split(":", 1)[0]


def _disparity(test_id: str, value):
    """A value as its distance from parity (signed), so every kind of test shares one axis."""
    return None if value is None else value - PARITY.get(_kind(test_id), 0.0)


def _x(value, low: float, high: float) -> float:
    span = PLOT_WIDTH - LABEL_WIDTH - 2 * MARGIN
    return round(LABEL_WIDTH + MARGIN + (min(max(value, low), high) - low) / (high - low) * span, 1)


def _mark(test_id: str, side: dict, *, y: float, colour: str) -> dict | None:
    """A point with its interval on the plot's axis (disparity from parity, −1 … 1)."""
    estimate = _disparity(test_id, side.get("estimate"))
    if estimate is None:
        return None
    low, high = (_disparity(test_id, v) for v in side.get("ci") or [None, None])
    low = estimate if low is None else low
    high = estimate if high is None else high
    return {"x": _x(estimate, -1, 1), "x1": _x(low, -1, 1), "x2": _x(high, -1, 1), "y": y, "colour": colour}


def report_plot(content: dict | None) -> dict | None:
    """Coordinates of the before/after plot: one row per finding's test, before above after."""
    if not content or not content["findings"]:
        return None
    rows = []
    for index, row in enumerate(content["findings"]):
        top = MARGIN + index * 2 * ROW_HEIGHT
        marks = [_mark(row["test"], row["before"], y=top + ROW_HEIGHT * 0.6, colour=VERDICT_COLOURS[None]),
                 _mark(row["test"], row["after"], y=top + ROW_HEIGHT * 1.4, colour=VERDICT_COLOURS[row["verdict"]])]
        rows.append({"label": f"#{row['submission']} {row['test']}", "verdict": row["verdict"],
                     "label_y": top + ROW_HEIGHT, "marks": [m for m in marks if m]})
    height = MARGIN * 2 + len(rows) * 2 * ROW_HEIGHT + 16  # the axis and its labels below the rows
    return {"width": PLOT_WIDTH, "height": height, "rows": rows, "zero": _x(0, -1, 1), "left": _x(-1, -1, 1),
            "right": _x(1, -1, 1), "axis_y": height - 18, "label_y": height - 4}


def audit_plot(curve: dict, models: list[str]) -> dict:
    """One small plot per finding: its disparity from parity at each compression level."""
    width, height, pad = 360, 120, 18
    step = (width - 2 * pad) / max(1, len(models) - 1)
    points = []
    by_model = {p["model"]: p for p in curve["points"]}
    for index, name in enumerate(models):
        point = by_model.get(name)
        value = _disparity(curve["test"], point["estimate"]) if point else None
        if value is None:
            continue
        low, high = (_disparity(curve["test"], v) if v is not None else value for v in point["ci"] or [None, None])

        def y(v):
            return round(height / 2 - max(-1, min(1, v)) * (height / 2 - pad), 1)

        points.append({"x": round(pad + index * step, 1), "y": y(value), "y1": y(low), "y2": y(high),
                       "model": name, "colour": VERDICT_COLOURS[point.get("verdict")]})
    return {"width": width, "height": height, "points": points, "zero": height // 2,
            "line": " ".join(f"{p['x']},{p['y']}" for p in points)}


def _report_rows(challenge) -> list[dict]:
    rows = []
    for report in latest_reports(challenge=challenge):
        content = report_content(report)
        rows.append({"report": report, "content": content, "plot": report_plot(content),
                     "percent": (100 * report.progress_done // report.progress_total) if report.progress_total else 0})
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def challenge_models(request, slug: str):
    challenge = _challenge_for_viewer(slug=slug, user=request.user)
    may_start = _may_start(user=request.user, challenge=challenge)
    if request.method == "POST":
        if not may_start:
            raise Http404("No such page.")
        try:
            report = reports.report_create(challenge=challenge, candidate=request.POST.get("candidate", ""),
                                           user=request.user)
        except reports.ReportFailed as exc:
            messages.error(request, str(exc))
        else:
            reports.report_enqueue(report=report)
            messages.success(request, f"Report of {report.candidate} queued; this page shows its progress.")
        return redirect("challenge-models", slug=challenge.slug)
    rows = _report_rows(challenge)
    audit = reports.audit_curves(challenge=challenge)
    models = [challenge.model_name, *[r.candidate for r in audit["reports"]]]
    curves = [{**curve, "plot": audit_plot(curve, models)} for curve in audit["curves"]]
    busy = ModelReport.objects.filter(challenge=challenge, status__in=(REPORT_PENDING, REPORT_RUNNING)).exists()
    return render(request, "grading/challenge_models.html", {
        "challenge": challenge, "rows": rows, "may_start": may_start, "busy": busy, "audit": audit,
        "curves": curves, "audit_models": models, "colours": {k: v for k, v in VERDICT_COLOURS.items() if k},
    })


@login_required
@require_POST
def challenge_models_audit(request, slug: str):
    challenge = _challenge_for_viewer(slug=slug, user=request.user)
    if not _may_start(user=request.user, challenge=challenge):
        raise Http404("No such page.")
    _audit, queued = reports.audit_create(challenge=challenge, user=request.user)
    messages.success(request, f"Compression audit queued: {', '.join(r.candidate for r in queued)}.")
    return redirect("challenge-models", slug=challenge.slug)


def report_csv_text(content: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in content["findings"]:
        before, after, change = row["before"], row["after"], row["abs_disparity_change"]
        writer.writerow([row["submission"], row["test"], before["estimate"], *before["ci"], before["p_holm"],
                         after["estimate"], *after["ci"], after["p_holm"], change["estimate"], *change["ci"],
                         row["verdict"]])
    return buffer.getvalue()


@login_required
@require_GET
def challenge_model_report_csv(request, slug: str, report_id: int):
    challenge = _challenge_for_viewer(slug=slug, user=request.user)
    content = report_content(ModelReport.objects.filter(challenge=challenge, pk=report_id).first())
    if content is None:
        raise Http404("No such report.")
    response = HttpResponse(report_csv_text(content), content_type="text/csv; charset=utf-8")
    name = f"model-report-{challenge.slug}-{content['candidate'].replace('@', '-')}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def report_api_row(report: ModelReport) -> dict:
    return {"id": report.pk, "candidate": report.candidate, "candidate_version": report.candidate_version,
            "status": report.status, "progress": {"done": report.progress_done, "total": report.progress_total},
            "audit": report.audit or None, "error": report.error or None, "warnings": report.warnings,
            "created_at": report.created_at.isoformat(),
            "finished_at": report.finished_at.isoformat() if report.finished_at else None,
            "report": report_content(report)}


class ChallengeModelsApi(APIView):
    """`GET /api/challenges/<slug>/models/`: the challenge's model and its reports, newest first
    (organizers and judges; 404 for anyone else)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="The challenge's model reports",
                   description='`{"challenge", "model", "reports": [{"id", "candidate", "candidate_version", "status", '
                               '"progress": {"done", "total"}, "audit", "error", "warnings", "created_at", '
                               '"finished_at", "report": {"challenge", "model", "candidate", "findings": [...]} or '
                               'null}]}`, newest first; organizers and judges of the challenge, 404 for anyone else.')
    def get(self, request, slug: str):
        challenge = _challenge_for_viewer(slug=slug, user=request.user)
        return Response({"challenge": challenge.slug, "model": challenge.model_name,
                         "reports": [report_api_row(r) for r in reports_of(challenge=challenge)]})
