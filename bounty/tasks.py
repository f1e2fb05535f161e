"""Celery tasks of the flow: ids in, one service call (bounty.flow), the service checks state first."""
from celery import shared_task
from celery.utils.log import get_task_logger
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from bounty import flow

logger = get_task_logger(__name__)

# Platform faults (database or Redis briefly away) are retried with backoff; probe faults never
# reach here as exceptions. Every task re-checks state first, so a retry is always safe.
PLATFORM_FAULTS = (OperationalError, InterfaceError, RedisConnectionError)
RETRY = dict(autoretry_for=PLATFORM_FAULTS, retry_backoff=2, retry_backoff_max=30, retry_jitter=False, max_retries=8)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def run_submission(run_id: str) -> str:
    outcome = flow.run_execute(run_id=run_id)
    logger.info("run %s: %s", run_id, outcome)
    return outcome


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def measure_submission(measurement_id: int) -> str:
    outcome = flow.measurement_execute(measurement_id=measurement_id)
    logger.info("measurement %s: %s", measurement_id, outcome)
    return outcome


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def measure_chunk(measurement_id: int, model: str, start: int, stop: int) -> int:
    return flow.measurement_chunk(measurement_id=measurement_id, model=model, start=start, stop=stop)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def measure_merge(measurement_id: int) -> str:
    outcome = flow.measurement_execute(measurement_id=measurement_id, chunks_done=True)
    logger.info("measurement %s (merged): %s", measurement_id, outcome)
    return outcome


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def reconcile() -> dict:
    report = flow.reconcile()
    if any(report.values()):
        logger.warning("reconcile: %s", report)
    return report
