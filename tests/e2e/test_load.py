"""Concurrent API clients against the real workers: every submission completes exactly once."""
from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework.authtoken.models import Token

from bounty import cli, states
from bounty.models import Submission
from grading.models import Measurement
from pipeline.models import ProbeRun
from tests.conftest import wait_for
from tests.factories import challenge_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS, PER_CLIENT = 8, 3
TRIVIAL_PROBE = b'''
from PIL import Image
from probekit import ImageSetWriter
with ImageSetWriter(groups=["a", "b"], title="load") as out:
    for k in range(4):
        image = Image.new("RGB", (64, 32), (128, 128, 128))
        image.paste((0, 0, 0) if k % 2 else (255, 255, 255), (4, 4, 28, 28))
        out.add(image, id=f"i{k}", regions=[("a", (0, 0, 32, 32)), ("b", (32, 0, 32, 32))])
'''


def test_concurrent_api_clients_get_every_submission_measured_exactly_once(live_server, celery_worker):
    challenge = challenge_create(slug="load", total_limit=100, daily_limit=100)
    tokens = [Token.objects.create(user=user_create(f"client{i}")).key for i in range(CLIENTS)]

    def client(token: str) -> list[int]:
        return [cli.submit(live_server.url, token, challenge=challenge.slug, probe_name="probe.py",
                           probe_content=TRIVIAL_PROBE, title=f"load {k}", harm_type="erasure")["id"]
                for k in range(PER_CLIENT)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        ids = [i for batch in pool.map(client, tokens) for i in batch]
    assert len(ids) == len(set(ids)) == CLIENTS * PER_CLIENT

    def all_done():
        finished = Submission.objects.filter(pk__in=ids, state__in=(states.IN_REVIEW, states.FAILED,
                                                                     states.PLATFORM_ERROR))
        return finished.count() == len(ids)

    wait_for(all_done, timeout=600, interval=1, what="every submission to be measured")
    assert set(Submission.objects.filter(pk__in=ids).values_list("state", flat=True)) == {states.IN_REVIEW}
    runs = ProbeRun.objects.filter(submission_id__in=ids)
    assert runs.count() == len(ids) and set(runs.values_list("attempt", flat=True)) == {1}
    assert Measurement.objects.filter(submission_id__in=ids, status="done").count() == len(ids)
    waits = sorted((run.started_at - run.queued_at).total_seconds() for run in runs)
    print(f"\nload: {len(ids)} submissions; queue wait median {statistics.median(waits):.2f} s, "
          f"p95 {waits[int(0.95 * (len(waits) - 1))]:.2f} s")
