"""A worker slot that frees takes the default queue (participants' work) before the bulk one.

The Redis transport's `priority` queue order (settings): a real worker with one slot, the messages
sent bulk first, default second, alternately, while no worker listens. Round robin would run them
in the order bulk, default, bulk, default or default, bulk, …; priority runs both defaults first.
"""
from __future__ import annotations

import pytest

from tests.conftest import WorkerProcess, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TASK = "pipeline.tasks.reconcile"  # idempotent and quick: any task would do


def test_a_free_slot_takes_the_default_queue_first(worker_env, paused_worker, tmp_path, settings):
    from config.celery import app

    sent = []
    for queue in ("bulk", "celery", "bulk", "celery"):
        sent.append((queue, app.send_task(TASK, queue=queue)))
    worker = WorkerProcess(worker_env, tmp_path / "worker.log", concurrency=1, name="priority")
    worker.start()
    try:
        wait_for(lambda: all(result.ready() for _q, result in sent), timeout=120, what="the four tasks")
    finally:
        worker.stop()
    order = [queue for queue, result in sorted(sent, key=lambda item: item[1].date_done)]
    assert order == ["celery", "celery", "bulk", "bulk"], order


def test_a_big_measurements_chunks_are_bulk_work(settings):
    from config.celery import app

    assert app.amqp.router.route({}, "pipeline.tasks.measure_chunk")["queue"].name == settings.CELERY_BULK_QUEUE
    assert app.amqp.router.route({}, "pipeline.tasks.measure_merge")["queue"].name == \
        settings.CELERY_TASK_DEFAULT_QUEUE
