"""Celery tasks of the pipeline: ids in, one orchestration call, which checks state first."""
from celery import shared_task
from celery.utils.log import get_task_logger

from bounty import services as bounty_services
from bounty import webhooks
from pipeline import measurements, replication, reports, runs
from pipeline import reconcile as recovery
from pipeline.faults import CHUNK_TASK, MEASURE_TASK, MERGE_TASK, ROBUSTNESS_TASK, RUN_TASK, TASK_RETRY

logger = get_task_logger(__name__)


@shared_task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True, **TASK_RETRY)
def run_submission(run_id: str) -> str:
    outcome = runs.run_execute(run_id=run_id)
    logger.info("run %s: %s", run_id, outcome)
    return outcome


@shared_task(name=MEASURE_TASK, acks_late=True, reject_on_worker_lost=True, **TASK_RETRY)
def measure_submission(measurement_id: int) -> str:
    outcome = measurements.measurement_execute(measurement_id=measurement_id)
    logger.info("measurement %s: %s", measurement_id, outcome)
    return outcome


@shared_task(name=CHUNK_TASK, acks_late=True, reject_on_worker_lost=True, **TASK_RETRY)
def measure_chunk(measurement_id: int, model: str, start: int, stop: int) -> int:
    return measurements.measurement_chunk(measurement_id=measurement_id, model=model, start=start, stop=stop)


@shared_task(name=MERGE_TASK, acks_late=True, reject_on_worker_lost=True, **TASK_RETRY)
def measure_merge(measurement_id: int) -> str:
    outcome = measurements.measurement_execute(measurement_id=measurement_id, chunks_done=True)
    logger.info("measurement %s (merged): %s", measurement_id, outcome)
    return outcome


@shared_task(name=reports.REPORT_TASK, acks_late=True, reject_on_worker_lost=True, **TASK_RETRY)
def model_report(report_id: int) -> str:
    """A model report (pipeline.reports), sent to the bulk queue."""
    outcome = reports.report_execute(report_id=report_id)
    logger.info("model report %s: %s", report_id, outcome)
    return outcome


@shared_task(name=reports.REPORT_CHUNK_TASK, acks_late=True, reject_on_worker_lost=True, **TASK_RETRY)
def model_report_chunk(report_id: int, submission_id: int, model: str, start: int, stop: int) -> int:
    return reports.report_chunk(report_id=report_id, submission_id=submission_id, model=model, start=start,
                                stop=stop)


@shared_task(name=reports.REPORT_MERGE_TASK, acks_late=True, reject_on_worker_lost=True, **TASK_RETRY)
def model_report_merge(report_id: int) -> str:
    outcome = reports.report_execute(report_id=report_id, chunks_done=True)
    logger.info("model report %s (merged): %s", report_id, outcome)
    return outcome


@shared_task(name="pipeline.tasks.reconcile", acks_late=True, reject_on_worker_lost=True, **TASK_RETRY)
def reconcile() -> dict:
    report = recovery.reconcile()
    if any(report.values()):
        logger.warning("reconcile: %s", report)
    return report


@shared_task(name="pipeline.tasks.release_embargoed_findings", acks_late=True, **TASK_RETRY)
def release_embargoed_findings() -> list[int]:
    """Publish the accepted findings whose disclosure embargo ended (or whose organizer answered)."""
    released = bounty_services.findings_release_due()
    if released:
        logger.info("published after their embargo: %s", released)
    return released


@shared_task(name=webhooks.WEBHOOK_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=webhooks.WEBHOOK_ATTEMPTS - 1)
def deliver_webhook(self, webhook_id: int, submission_id: int, body: str) -> str:
    """One signed POST; a receiver that fails is tried again with backoff, WEBHOOK_ATTEMPTS in all."""
    attempt = self.request.retries + 1
    if webhooks.webhook_deliver(webhook_id=webhook_id, submission_id=submission_id, body=body, attempt=attempt):
        return "delivered"
    if attempt >= webhooks.WEBHOOK_ATTEMPTS:
        logger.warning("webhook %s: gave up on submission %s after %s attempts", webhook_id, submission_id, attempt)
        return "gave up"
    raise self.retry(countdown=webhooks.retry_delay_s(attempt))


@shared_task(name=ROBUSTNESS_TASK, acks_late=True, reject_on_worker_lost=True, **TASK_RETRY)
def robustness(replication_id: int) -> str:
    outcome = replication.robustness_execute(replication_id=replication_id)
    logger.info("robustness of replication %s: %s", replication_id, outcome)
    return outcome
