"""Which exceptions are the platform's passing faults (docs/failure-model.md).

The database, Redis or the object storage briefly away: the task is retried with backoff, a bounded number of times;
every task re-checks state first, so a retry is always safe. Everything else a stage can raise is
classified where it happens: the probe's fault becomes `failed` with its reason, an unforeseen
platform fault a bounded retry and then a final `platform_error`.
"""
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
