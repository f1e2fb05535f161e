"""Seeding the demo submits each example probe once, even when two starts seed at the same time."""
from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.db import connections

from bounty.demo import DEMO_ACCOUNTS, DEMO_SLUG, example_probes, probe_upload
from bounty.models import Submission
from pipeline.models import ProbeRun


@pytest.mark.django_db(transaction=True)
def test_two_seeders_at_once_submit_every_example_once(paused_worker):  # its runs must not start
    call_command("load_demo", model="spectral-residual")
    start, errors = threading.Barrier(2), []

    def seed() -> None:
        try:
            start.wait()
            call_command("seed_demo_submissions")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=seed) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    seeded = Submission.objects.filter(challenge__slug=DEMO_SLUG, participant__username=DEMO_ACCOUNTS["participant"][0])
    assert sorted(seeded.values_list("probe_name", flat=True)) == sorted(probe_upload(p)[0] for p in example_probes())
    assert ProbeRun.objects.filter(submission__in=seeded).count() == len(example_probes())  # one run each
