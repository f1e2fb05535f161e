"""/metrics: the platform's metrics from real rows, parsed as Prometheus parses them; who may read them."""
from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from bounty import services, states
from bounty.models import Submission, SubmissionEvent
from grading import services as grading_services
from grading.models import Measurement, MeasurementStatus
from pipeline.models import ImageSet, ProbeRun
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker():
    """The test broker's queues, emptied before and after (nothing here is meant to run)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("celery", "bulk")
    yield client
    client.delete("celery", "bulk")


def _move(submission, *path):
    for before, after in zip(path, path[1:]):
        assert services.submission_transition(submission_id=submission.pk, from_states=(before,), to_state=after)


def _ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def _measured_run(submission, *, queued_s: float, started_s: float, finished_s: float) -> ImageSet:
    """The submission's run went ok, with these ages (seconds before now) for its timestamps."""
    run = submission.runs.get()
    ProbeRun.objects.filter(pk=run.pk).update(status="ok", queued_at=_ago(queued_s), started_at=_ago(started_s),
                                              finished_at=_ago(finished_s))
    return ImageSet.objects.create(run=run, path="runs/none", n_images=2, groups=["a", "b"], manifest_sha256="x")


@pytest.fixture
def platform(broker):
    """One submission of each kind the metrics must tell apart, with known timestamps."""
    challenge = challenge_create(slug="metrics")
    queued = submission_create(challenge=challenge, participant=user_create("quinn"))  # its run waits

    measuring = submission_create(challenge=challenge, participant=user_create("mia"))
    _move(measuring, states.QUEUED, states.RUNNING, states.MEASURING)
    grading_services.measurement_create(submission=measuring,
                                        image_set=_measured_run(measuring, queued_s=100, started_s=90, finished_s=35))

    broken = submission_create(challenge=challenge, participant=user_create("pat"))
    _move(broken, states.QUEUED, states.RUNNING, states.PLATFORM_ERROR)
    ProbeRun.objects.filter(submission=broken).update(status="platform_error", started_at=_ago(50), finished_at=_ago(48),
                                                      queued_at=_ago(52))

    reviewed = submission_create(challenge=challenge, participant=user_create("rey"))
    _move(reviewed, states.QUEUED, states.RUNNING, states.MEASURING)
    done = grading_services.measurement_create(
        submission=reviewed, image_set=_measured_run(reviewed, queued_s=4000, started_s=3998, finished_s=3000))
    Measurement.objects.filter(pk=done.pk).update(status=MeasurementStatus.DONE, created_at=_ago(3000), finished_at=_ago(2980))
    _move(reviewed, states.MEASURING, states.MEASURED, states.IN_REVIEW)
    Submission.objects.filter(pk=reviewed.pk).update(created_at=_ago(4000))
    SubmissionEvent.objects.filter(submission=reviewed, to_state=states.IN_REVIEW).update(at=_ago(2000))

    broker.rpush("bulk", b"a message nobody runs")
    return {"queued": queued, "measuring": measuring, "broken": broken, "reviewed": reviewed}


def scrape(client, **headers) -> dict:
    """GET /metrics and parse it with Prometheus's own parser: {(sample name, labels): value}."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_a_scrape_reports_queues_work_in_flight_and_platform_errors(client, platform):
    samples = scrape(client)
    assert value(samples, "cropbias_broker_up") == 1
    assert value(samples, "cropbias_queue_depth", queue="bulk") == 1
    assert value(samples, "cropbias_queue_depth", queue="celery") == 0

    assert value(samples, "cropbias_runs_in_flight", status="queued") == 1
    assert value(samples, "cropbias_runs_in_flight", status="running") == 0
    assert value(samples, "cropbias_runs_finished_total", status="ok") == 2
    assert value(samples, "cropbias_runs_finished_total", status="platform_error") == 1
    assert value(samples, "cropbias_oldest_queued_run_age_seconds") >= 0

    assert value(samples, "cropbias_measurements_in_flight", status="pending") == 1
    assert value(samples, "cropbias_measurements_in_flight", status="running") == 0
    assert value(samples, "cropbias_measurements_finished_total", status="done") == 1
    assert value(samples, "cropbias_measurements_finished_total", status="failed") == 0

    for state, expected in ((states.QUEUED, 1), (states.MEASURING, 1), (states.PLATFORM_ERROR, 1),
                            (states.IN_REVIEW, 1), (states.PUBLISHED, 0)):
        assert value(samples, "cropbias_submissions", state=state) == expected
    assert value(samples, "cropbias_platform_errors_total", stage="run") == 1
    assert value(samples, "cropbias_platform_errors_total", stage="measurement") == 0


def test_stage_durations_are_histograms_of_the_stored_timestamps(client, platform):
    samples = scrape(client)
    # Runs that started: waits of 10 s (measuring), 2 s (broken) and 2 s (reviewed).
    assert value(samples, "cropbias_run_queue_wait_seconds_count") == 3
    assert value(samples, "cropbias_run_queue_wait_seconds_sum") == pytest.approx(14, abs=0.1)
    assert value(samples, "cropbias_run_queue_wait_seconds_bucket", le="1.0") == 0
    assert value(samples, "cropbias_run_queue_wait_seconds_bucket", le="5.0") == 2
    assert value(samples, "cropbias_run_queue_wait_seconds_bucket", le="15.0") == 3
    assert value(samples, "cropbias_run_queue_wait_seconds_bucket", le="+Inf") == 3
    # Run durations 55 s, 2 s, 998 s.
    assert value(samples, "cropbias_run_duration_seconds_sum") == pytest.approx(1055, abs=0.1)
    assert value(samples, "cropbias_run_duration_seconds_bucket", le="60.0") == 2
    assert value(samples, "cropbias_run_duration_seconds_bucket", le="600.0") == 2
    assert value(samples, "cropbias_run_duration_seconds_bucket", le="1800.0") == 3
    # Only the finished measurement: 20 s.
    assert value(samples, "cropbias_measurement_duration_seconds_count") == 1
    assert value(samples, "cropbias_measurement_duration_seconds_sum") == pytest.approx(20, abs=0.1)
    assert value(samples, "cropbias_measurement_duration_seconds_bucket", le="15.0") == 0
    assert value(samples, "cropbias_measurement_duration_seconds_bucket", le="30.0") == 1
    # Submitted 4000 s ago, in review 2000 s ago.
    assert value(samples, "cropbias_submit_to_review_seconds_count") == 1
    assert value(samples, "cropbias_submit_to_review_seconds_sum") == pytest.approx(2000, abs=0.1)
    assert value(samples, "cropbias_submit_to_review_seconds_bucket", le="1800.0") == 0
    assert value(samples, "cropbias_submit_to_review_seconds_bucket", le="3600.0") == 1


def test_a_platform_error_while_measuring_counts_at_its_stage(client, platform):
    _move(platform["measuring"], states.MEASURING, states.PLATFORM_ERROR)
    samples = scrape(client)
    assert value(samples, "cropbias_platform_errors_total", stage="measurement") == 1
    assert value(samples, "cropbias_platform_errors_total", stage="run") == 1
    assert value(samples, "cropbias_submissions", state=states.PLATFORM_ERROR) == 2


def test_django_prometheus_request_metrics_are_served_too(client, platform):
    client.get("/")
    samples = scrape(client)
    assert any(name == "django_http_requests_before_middlewares_total" for name, _ in samples)


def test_a_down_broker_is_reported_not_raised(client, platform, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    samples = scrape(client)
    assert value(samples, "cropbias_broker_up") == 0
    assert not any(name == "cropbias_queue_depth" for name, _ in samples)
    assert value(samples, "cropbias_runs_in_flight", status="queued") == 1


def test_without_a_token_only_loopback_clients_are_answered(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 403 and b"METRICS_TOKEN" in refused.content
    # Through a proxy on the same host everyone would look loopback: a forwarded request is refused.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    for header in ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED", "HTTP_VIA", "HTTP_X_REAL_IP"):
        assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", **{header: "x"}).status_code == 403, header


def test_without_a_token_in_production_nobody_is_answered(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_LOOPBACK_OPEN = "", False
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_with_a_token_the_bearer_header_is_required_from_everywhere(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "Basic s3cret-metrics-token"}):
        refused = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)
        assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9",
                      HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 405


def test_a_scrape_costs_the_same_queries_however_many_rows(client, platform):
    with CaptureQueriesContext(connection) as small:
        scrape(client)
    challenge = challenge_create(slug="metrics-more")
    for i in range(12):
        submission = submission_create(challenge=challenge, participant=user_create(f"many{i}"))
        _move(submission, states.QUEUED, states.RUNNING, states.PLATFORM_ERROR)
    with CaptureQueriesContext(connection) as large:
        samples = scrape(client)
    assert value(samples, "cropbias_platform_errors_total", stage="run") == 13
    assert len(large) == len(small) <= 8
