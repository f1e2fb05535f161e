"""The organizers' worker-health page, against the real worker."""
from __future__ import annotations

import time

import pytest
from django.urls import reverse

from tests.factories import challenge_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)


def _health(client) -> dict:
    return client.get(reverse("worker-health") + "?format=json").json()


def _answered(client) -> dict:
    """The page once the workers' answer is in (the first load only starts asking)."""
    from tests.conftest import wait_for

    def answered():
        health = _health(client)
        return None if health["workers_checking"] else health

    return wait_for(answered, timeout=30, interval=0.1, what="the workers' answer")


def test_an_organizer_sees_the_running_worker_and_the_queue(client, celery_worker):
    from pipeline.models import ProbeRun

    organizer = user_create("olga")
    challenge = challenge_create(slug="health")
    challenge.organizers.add(organizer)
    client.force_login(organizer)
    health = _answered(client)
    assert health["error"] is None
    assert any(w["name"].startswith("test-") for w in health["workers"])
    assert health["queue_length"] is not None
    assert health["runs_queued"] == ProbeRun.objects.filter(status="queued").count()
    page = client.get(reverse("worker-health")).content.decode()
    assert "Workers seen" in page and "test-" in page


def test_a_participant_gets_404_on_the_worker_page(client):
    client.force_login(user_create("pia"))
    assert client.get(reverse("worker-health")).status_code == 404


def _organizer_client(client, username: str):
    organizer = user_create(username)
    challenge_create(slug=f"health-{username}").organizers.add(organizer)
    client.force_login(organizer)
    return client


def test_the_first_load_does_not_wait_for_the_workers_and_says_they_are_being_asked(client, celery_worker):
    from django.core.cache import cache

    from pipeline import health

    cache.delete(health.WORKERS_CACHE_KEY)
    cache.delete(health.REFRESH_LOCK_KEY)
    client = _organizer_client(client, "otto")
    sent = health.broadcast_count()
    first = _health(client)
    assert first["workers_checking"] and first["workers_age_s"] is None and first["workers"] == []
    assert first["error"] is None and first["queue_length"] is not None  # the rest of the page is there
    page = client.get(reverse("worker-health")).content.decode()
    assert "Checking" in page and "No worker answered" not in page
    answered = _answered(client)  # the background inspection fills the snapshot in
    assert health.broadcast_count() > sent
    assert any(w["name"].startswith("test-") for w in answered["workers"]) and answered["workers_age_s"] is not None


def test_a_second_load_within_the_ttl_asks_no_worker(client, celery_worker):
    from django.core.cache import cache

    from pipeline import health

    cache.delete(health.WORKERS_CACHE_KEY)
    client = _organizer_client(client, "oscar")
    first = _answered(client)
    sent = health.broadcast_count()
    assert sent >= 2 and any(w["name"].startswith("test-") for w in first["workers"])
    second = client.get(reverse("worker-health") + "?format=json").json()
    page = client.get(reverse("worker-health")).content.decode()
    assert health.broadcast_count() == sent  # both answered from the cached snapshot
    assert second["workers"] == first["workers"] and second["workers_age_s"] >= first["workers_age_s"]
    assert 'id="workers-age"' in page and "s ago" in page


def test_a_stale_snapshot_is_served_with_its_age_and_refreshed_in_the_background(client, celery_worker):
    from django.core.cache import cache

    from pipeline import health
    from tests.conftest import wait_for

    cache.delete(health.REFRESH_LOCK_KEY)
    old = {"workers": [{"name": "gone@old", "active": 0, "concurrency": 1, "tasks_done": 0}],
           "at": time.time() - 60, "error": None}
    cache.set(health.WORKERS_CACHE_KEY, old, timeout=health.WORKERS_KEEP_S)
    sent = health.broadcast_count()
    client = _organizer_client(client, "odile")
    stale = client.get(reverse("worker-health") + "?format=json").json()
    assert [w["name"] for w in stale["workers"]] == ["gone@old"] and stale["workers_age_s"] >= 60
    wait_for(lambda: cache.get(health.WORKERS_CACHE_KEY)["at"] > old["at"], timeout=30, what="the background refresh")
    assert health.broadcast_count() > sent
    fresh = client.get(reverse("worker-health") + "?format=json").json()
    assert any(w["name"].startswith("test-") for w in fresh["workers"]) and fresh["workers_age_s"] < 60


def test_both_queues_are_counted(client):
    from django.conf import settings

    client = _organizer_client(client, "ines")
    health = client.get(reverse("worker-health") + "?format=json").json()
    assert set(health["queue_lengths"]) == {q.name for q in settings.CELERY_TASK_QUEUES} == {"celery", "bulk"}
    assert health["queue_length"] == sum(health["queue_lengths"].values())
