"""The platform's Prometheus metrics, computed at scrape time from the database and the broker.

Web workers and Celery workers are separate processes, so a counter held in memory would be one
process's share. Everything here is read from the rows instead (the same answer whichever web
process is scraped): queue lengths from the broker (`pipeline.health.queue_lengths`), work in
flight and finished by status, platform errors by stage, and the stage durations as histograms
built from the timestamps the rows keep. One scrape costs a fixed number of queries (one per
table read, whatever the number of rows) and one Redis round trip. The metric list with its
meaning is in docs/operations.md.

The `/metrics` view adds django-prometheus's own metrics (requests, responses, per process) and
is closed by `METRICS_TOKEN` (a bearer token) or, when that is unset, to loopback clients.
"""
from __future__ import annotations

import hmac
import ipaddress
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from bounty import states
from bounty.models import Submission, SubmissionEvent
from grading.models import MEASUREMENT_IN_FLIGHT, Measurement, MeasurementStatus
from pipeline.faults import unknown_faults_count
from pipeline.health import queue_lengths
from pipeline.models import ProbeRun
from sandbox.status import RUN_IN_FLIGHT, RunStatus

PREFIX = "cropbias"
# Upper bounds (seconds) of every duration histogram: from a quick run to a day in review.
BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 6 * 3600, 24 * 3600)

RUNS_FINISHED = tuple(status for status in RunStatus if status not in RUN_IN_FLIGHT)
MEASUREMENTS_FINISHED = tuple(status for status, _ in MeasurementStatus.choices if status not in MEASUREMENT_IN_FLIGHT)
# The submission's state before platform_error names the stage that failed (bounty.states).
PLATFORM_ERROR_STAGES = {states.RUNNING: "run", states.MEASURING: "measurement"}


def _duration(end: str, start: str) -> ExpressionWrapper:
    return ExpressionWrapper(F(end) - F(start), output_field=DurationField())


def _histogram_aggregates(key: str, duration: str, present: Q) -> dict:
    """The aggregates of one histogram over annotated `duration`, among rows matching `present`."""
    aggregates = {f"{key}_count": Count("pk", filter=present), f"{key}_sum": Sum(duration, filter=present)}
    for i, bound in enumerate(BUCKETS_S):
        aggregates[f"{key}_le{i}"] = Count("pk", filter=present & Q(**{f"{duration}__lte": timedelta(seconds=bound)}))
    return aggregates


def _histogram(name: str, documentation: str, values: dict, key: str) -> HistogramMetricFamily:
    buckets = [(str(float(bound)), values[f"{key}_le{i}"]) for i, bound in enumerate(BUCKETS_S)]
    buckets.append(("+Inf", values[f"{key}_count"]))
    total = values[f"{key}_sum"]
    return HistogramMetricFamily(name, documentation, buckets=buckets,
                                 sum_value=total.total_seconds() if total is not None else 0.0)


def _counts_by(queryset, field: str) -> dict[str, int]:
    return dict(queryset.order_by().values_list(field).annotate(n=Count("pk")).values_list(field, "n"))



def _by_status(model, name: str, what: str, *, in_flight, finished, in_flight_help: str):
    """`<name>_in_flight{status}` (a gauge) and `<name>_finished{status}` (a counter) from one count query."""
    by_status = _counts_by(model.objects.all(), "status")
    for family, statuses in (
            (GaugeMetricFamily(f"{PREFIX}_{name}_in_flight", f"{what} {in_flight_help}", labels=["status"]), in_flight),
            (CounterMetricFamily(f"{PREFIX}_{name}_finished", f"{what} that ended, by final status",
                                 labels=["status"]), finished)):
        for status in statuses:
            family.add_metric([status], by_status.get(status, 0))
        yield family

class PlatformCollector:
    """Reads the platform's state at each scrape (registered on its own registry below)."""

    def describe(self):
        return []  # no query when registered; the families are known only at scrape time

    def collect(self):
        yield from self._queues()
        yield from self._runs()
        yield from self._measurements()
        yield from self._submissions()

    def _queues(self):
        lengths = queue_lengths()
        up = GaugeMetricFamily(f"{PREFIX}_broker_up", "1 if the broker answered this scrape's queue-length read, else 0")
        up.add_metric([], 0 if None in lengths.values() else 1)
        yield up
        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Messages waiting in each Celery queue the workers consume",
                                  labels=["queue"])
        for name, length in lengths.items():
            if length is not None:
                depth.add_metric([name], length)
        yield depth

    def _runs(self):
        yield from _by_status(ProbeRun, "runs", "Probe runs", in_flight=RUN_IN_FLIGHT, finished=RUNS_FINISHED,
                              in_flight_help="queued or running")

        started = Q(started_at__isnull=False)
        values = ProbeRun.objects.annotate(wait=_duration("started_at", "queued_at"),
                                           took=_duration("finished_at", "started_at")).aggregate(
            oldest_queued=Min("queued_at", filter=Q(status=RunStatus.QUEUED)),
            **_histogram_aggregates("wait", "wait", started),
            **_histogram_aggregates("took", "took", started & Q(finished_at__isnull=False)),
        )
        oldest = GaugeMetricFamily(f"{PREFIX}_oldest_queued_run_age_seconds",
                                   "Age of the oldest queued run (0 when none is queued)")
        oldest_at = values["oldest_queued"]
        oldest.add_metric([], max(0.0, (timezone.now() - oldest_at).total_seconds()) if oldest_at else 0.0)
        yield oldest
        yield _histogram(f"{PREFIX}_run_queue_wait_seconds", "Probe runs: queued_at to started_at", values, "wait")
        yield _histogram(f"{PREFIX}_run_duration_seconds", "Probe runs: started_at to finished_at", values, "took")

    def _measurements(self):
        yield from _by_status(Measurement, "measurements", "Measurements", in_flight=MEASUREMENT_IN_FLIGHT,
                              finished=MEASUREMENTS_FINISHED, in_flight_help="pending or running")
        values = Measurement.objects.annotate(took=_duration("finished_at", "created_at")).aggregate(
            **_histogram_aggregates("took", "took", Q(finished_at__isnull=False)))
        yield _histogram(f"{PREFIX}_measurement_duration_seconds",
                         "Measurements: created (the run's image set stored) to finished", values, "took")
        unknown = CounterMetricFamily(
            f"{PREFIX}_measurement_unknown_faults",
            "Exceptions nobody foresaw while measuring (each logged with its traceback; alert on any increase)")
        unknown.add_metric([], unknown_faults_count())
        yield unknown

    def _submissions(self):
        by_state = _counts_by(Submission.objects.all(), "state")
        gauge = GaugeMetricFamily(f"{PREFIX}_submissions", "Submissions in each state", labels=["state"])
        for state, _ in states.SUBMISSION_STATES:
            gauge.add_metric([state], by_state.get(state, 0))
        yield gauge

        errors = _counts_by(SubmissionEvent.objects.filter(to_state=states.PLATFORM_ERROR), "from_state")
        by_stage = dict.fromkeys(PLATFORM_ERROR_STAGES.values(), 0)
        for from_state, n in errors.items():
            stage = PLATFORM_ERROR_STAGES.get(from_state)
            if stage:
                by_stage[stage] += n
        counter = CounterMetricFamily(
            f"{PREFIX}_platform_errors",
            "Submissions moved to platform_error, by the stage that failed (each retry counts; a judge's re-run does not)",
            labels=["stage"])
        for stage, n in by_stage.items():
            counter.add_metric([stage], n)
        yield counter

        # The first arrival in review is the only move from measured to in_review (bounty.states).
        values = SubmissionEvent.objects.filter(from_state=states.MEASURED, to_state=states.IN_REVIEW).annotate(
            took=_duration("at", "submission__created_at")).aggregate(**_histogram_aggregates("took", "took", Q()))
        yield _histogram(f"{PREFIX}_submit_to_review_seconds", "Submissions: created to first in_review", values, "took")


PLATFORM_REGISTRY = CollectorRegistry(auto_describe=False)
PLATFORM_REGISTRY.register(PlatformCollector())


def platform_metrics() -> bytes:
    """The platform's metrics in Prometheus's text format."""
    return generate_latest(PLATFORM_REGISTRY)


# Headers a proxy adds: any of them (or any X-Forwarded-*) means the client is not the loopback peer.
LOOPBACK_HINTS = ("HTTP_FORWARDED", "HTTP_VIA", "HTTP_X_REAL_IP", "HTTP_X_CLIENT_IP", "HTTP_TRUE_CLIENT_IP",
                  "HTTP_CF_CONNECTING_IP", "HTTP_X_ORIGINAL_FORWARDED_FOR")


def _proxied(meta) -> bool:
    return any(name.startswith("HTTP_X_FORWARDED_") for name in meta) or any(meta.get(name) for name in LOOPBACK_HINTS)


def metrics_refusal(request) -> HttpResponse | None:
    """None if the client may read /metrics, else the plain 401/403 to answer.

    With METRICS_TOKEN set, only `Authorization: Bearer <token>` (compared in constant time). Unset,
    only a loopback client that did not come through a proxy (a proxy on the same host would make
    everyone loopback: a forwarded-for header means it did)."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        response = HttpResponse("401 Unauthorized: /metrics needs 'Authorization: Bearer <METRICS_TOKEN>'.\n",
                                status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    try:
        loopback = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        loopback = False
    if settings.METRICS_LOOPBACK_OPEN and loopback and not _proxied(request.META):
        return None
    return HttpResponse("403 Forbidden: METRICS_TOKEN is not set, so /metrics answers only loopback clients that "
                        "came through no proxy (and none in production).\n",
                        status=403, content_type="text/plain; charset=utf-8")


@never_cache
@require_GET
def metrics_view(request):
    """django-prometheus's metrics of this process, then the platform's (the same from every process)."""
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    response = ExportToDjangoView(request)
    response.content = response.content + platform_metrics()
    return response
