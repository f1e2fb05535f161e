"""Which exceptions are the platform's passing faults (docs/failure-model.md).

The database, Redis or the object storage briefly away: the task is retried with backoff, a bounded number of times;
every task re-checks state first, so a retry is always safe. Everything else a stage can raise is
classified where it happens: the probe's fault becomes `failed` with its reason, an unforeseen
platform fault a bounded retry and then a final `platform_error`.

An exception nobody foresaw while measuring is counted (`unknown_fault_record`, read by /metrics
as `cropbias_measurement_unknown_faults_total`, so organizers are alerted) and logged with its
traceback; what it costs the participant is decided by pipeline.measurements.
"""
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from blobs import StorageUnavailable

PLATFORM_FAULTS = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, StorageUnavailable)
TASK_RETRY = dict(autoretry_for=PLATFORM_FAULTS, retry_backoff=2, retry_backoff_max=30, retry_jitter=False,
                  max_retries=8)

# Task names: the pipeline sends its tasks by name (pipeline.tasks registers them under these).
RUN_TASK = "pipeline.tasks.run_submission"
MEASURE_TASK = "pipeline.tasks.measure_submission"
CHUNK_TASK = "pipeline.tasks.measure_chunk"
MERGE_TASK = "pipeline.tasks.measure_merge"
ROBUSTNESS_TASK = "pipeline.tasks.robustness"

UNKNOWN_FAULTS_KEY = "measurement-unknown-faults"


def unknown_fault_record() -> None:
    """Count one unforeseen exception at measurement (in the shared cache: every worker adds to it)."""
    try:
        cache.add(UNKNOWN_FAULTS_KEY, 0, timeout=None)
        cache.incr(UNKNOWN_FAULTS_KEY)
    except (ValueError, *PLATFORM_FAULTS):  # the count is lost, the measurement's fate is not
        pass


def unknown_faults_count() -> int:
    return int(cache.get(UNKNOWN_FAULTS_KEY, 0))
