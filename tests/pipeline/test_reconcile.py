"""Reconcile re-sends only work no live worker holds: leases decide, not age alone."""
from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from grading import services as grading_services
from grading.models import Measurement, MeasurementStatus
from pipeline.leases import Lease, lease_held
from pipeline.models import ImageSet, ProbeRun
from pipeline.reconcile import reconcile
from sandbox.status import RunStatus
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_queue():
    """Reconcile sends real tasks to the test broker; nobody should run them after this test."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.delete("celery")


def _old(model, pk, field):
    model.objects.filter(pk=pk).update(**{field: timezone.now() - timedelta(seconds=settings.REAPER_GRACE_S + 60)})


@pytest.fixture
def measurement():
    submission = submission_create(challenge=challenge_create(slug="recon"), participant=user_create("rae"))
    run = submission.runs.get()
    ProbeRun.objects.filter(pk=run.pk).update(status="ok")
    image_set = ImageSet.objects.create(run=run, path="runs/none", n_images=2, groups=["a", "b"], manifest_sha256="x")
    m = grading_services.measurement_create(submission=submission, image_set=image_set)
    Measurement.objects.filter(pk=m.pk).update(status=MeasurementStatus.RUNNING)
    _old(Measurement, m.pk, "created_at")
    return m


def test_a_long_measurement_whose_lease_is_held_is_not_resent(measurement, empty_queue):
    Measurement.objects.filter(pk=measurement.pk).update(status=MeasurementStatus.PENDING)
    assert grading_services.measurement_claim(measurement_id=measurement.pk, holder="w1", ttl_s=60)
    before = empty_queue.llen("celery")
    report = reconcile()
    assert report["measurements_requeued"] == 0
    assert empty_queue.llen("celery") == before
    assert Measurement.objects.get(pk=measurement.pk).status == MeasurementStatus.RUNNING


def test_a_second_delivery_cannot_take_a_live_lease_nor_store_the_document(measurement):
    Measurement.objects.filter(pk=measurement.pk).update(status=MeasurementStatus.PENDING)
    assert grading_services.measurement_claim(measurement_id=measurement.pk, holder="w1", ttl_s=60)
    assert grading_services.measurement_claim(measurement_id=measurement.pk, holder="w2", ttl_s=60) is None
    assert not grading_services.measurement_store(measurement_id=measurement.pk, holder="w2", text="{}", model_version="")
    assert grading_services.measurement_store(measurement_id=measurement.pk, holder="w1", text="{}", model_version="")
    assert Measurement.objects.get(pk=measurement.pk).attempts == 1


def test_an_expired_lease_is_taken_over_as_the_next_attempt(measurement):
    Measurement.objects.filter(pk=measurement.pk).update(status=MeasurementStatus.PENDING)
    assert grading_services.measurement_claim(measurement_id=measurement.pk, holder="w1", ttl_s=60)
    Measurement.objects.filter(pk=measurement.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    taken = grading_services.measurement_claim(measurement_id=measurement.pk, holder="w2", ttl_s=60)
    assert taken is not None and taken.attempts == 2 and taken.lease_holder == "w2"
    assert not grading_services.measurement_renew(measurement_id=measurement.pk, holder="w1", ttl_s=60)


def test_a_measurement_whose_lease_expired_is_resent(measurement, empty_queue):
    before = empty_queue.llen("celery")
    report = reconcile()
    assert report["measurements_requeued"] == 1
    assert empty_queue.llen("celery") == before + 1


def test_a_second_worker_cannot_take_a_held_run_lease():
    with Lease("run", "987654") as first:
        with Lease("run", "987654") as second:
            assert first.acquired and not second.acquired
    assert not lease_held("run", "987654")


def test_a_running_run_is_taken_over_only_when_its_lease_expired(empty_queue):
    submission = submission_create(challenge=challenge_create(slug="recon-run"), participant=user_create("ron"))
    run = submission.runs.get()
    ProbeRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=timezone.now())
    _old(ProbeRun, run.pk, "started_at")
    with Lease("run", run.pk):
        assert reconcile()["runs_restarted"] == 0
    assert reconcile()["runs_restarted"] == 1


def test_model_reports_nobody_holds_are_resent_and_held_ones_are_not(empty_queue):
    from grading.models import REPORT_PENDING, REPORT_RUNNING, ModelReport

    challenge = challenge_create(slug="recon-reports")
    fresh, lost_message, lost_worker, held = (
        ModelReport.objects.create(challenge=challenge, model_name=challenge.model_name, candidate=f"c{k}")
        for k in range(4))
    _old(ModelReport, lost_message.pk, "created_at")
    soon, past = timezone.now() + timedelta(seconds=60), timezone.now() - timedelta(seconds=1)
    ModelReport.objects.filter(pk=lost_worker.pk).update(status=REPORT_RUNNING, lease_until=past)
    ModelReport.objects.filter(pk=held.pk).update(status=REPORT_RUNNING, lease_until=soon)
    assert fresh.status == REPORT_PENDING
    before = empty_queue.llen("bulk")
    try:
        assert reconcile()["reports_requeued"] == 2
        assert empty_queue.llen("bulk") == before + 2
    finally:
        empty_queue.delete("bulk")
