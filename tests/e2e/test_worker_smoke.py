import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_answers_and_runs_reconcile(celery_worker):
    from pipeline.tasks import reconcile

    result = reconcile.delay().get(timeout=60)
    assert set(result) == {"runs_requeued", "runs_restarted", "measurements_requeued", "reports_requeued",
                           "sandboxes_reaped"}
