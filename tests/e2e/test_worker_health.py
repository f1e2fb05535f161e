"""The organizers' worker-health page, against the real worker."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import challenge_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_organizer_sees_the_running_worker_and_the_queue(client, celery_worker):
    from sandbox.models import ProbeRun

    organizer = user_create("olga")
    challenge = challenge_create(slug="health")
    challenge.organizers.add(organizer)
    client.force_login(organizer)
    health = client.get(reverse("worker-health") + "?format=json").json()
    assert health["error"] is None
    assert any(w["name"].startswith("test-") for w in health["workers"])
    assert health["queue_length"] is not None
    assert health["runs_queued"] == ProbeRun.objects.filter(status="queued").count()
    page = client.get(reverse("worker-health")).content.decode()
    assert "Workers seen" in page and "test-" in page


def test_a_participant_gets_404_on_the_worker_page(client):
    client.force_login(user_create("pia"))
    assert client.get(reverse("worker-health")).status_code == 404
