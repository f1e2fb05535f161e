"""The Celery application: Redis as broker and result backend.

A worker warms up once before it forks its task processes (`worker_init`): each inherits the
measurement's code, its statistics, the default model and matplotlib's fonts already loaded,
so no participant's first measurement in a fresh task process pays for loading them.
"""
import logging
import os

from celery import Celery
from celery.signals import worker_init

from grading.measurement import warm_up

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cropbias")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def warm_up_before_forking(**_kwargs) -> None:
    try:
        warm_up()
    except Exception:  # noqa: BLE001 - a cold first measurement is slower, never wrong
        logging.getLogger(__name__).exception("the worker's warm-up failed; task processes start cold")
