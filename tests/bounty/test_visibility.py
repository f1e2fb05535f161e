"""One visibility rule for every URL of a finding: a hidden phase's findings are 404 to the public."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bounty import selectors
from bounty.models import BOARD_HIDDEN_UNTIL_END, BOARD_ORGANIZERS, BOARD_PUBLIC, Phase, Submission
from tests.bounty.conftest import publish
from tests.factories import user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def finding(measured):
    publish(measured, judge=user_create("jules"))
    return measured


def _in_phase(finding, visibility: str, *, ended: bool = False) -> None:
    now = timezone.now()
    phase = Phase.objects.create(
        challenge=finding.challenge, name="Round one", starts_at=now - timedelta(days=3),
        ends_at=now - timedelta(days=1) if ended else now + timedelta(days=3), leaderboard_visibility=visibility)
    Submission.objects.filter(pk=finding.pk).update(phase=phase)


def _urls(finding) -> list[str]:
    pk = finding.pk
    measurement = selectors.latest_measurement(submission=finding)
    names = selectors.artifact_names(measurement=measurement)
    assert names, "the finding has plots to walk"
    return [reverse(name, args=[pk]) for name in ("finding-detail", "finding-metrics", "finding-image-set",
                                                  "finding-bundle", "finding-avid", "api-finding-avid",
                                                  "submission-detail", "submission-status")] + [
        reverse("submission-artifact", args=[pk, name]) for name in names]


def _secrets(finding) -> list[bytes]:
    return [finding.title.encode(), finding.participant.username.encode(), str(finding.final_score).encode()]


@pytest.mark.parametrize("visibility", [BOARD_HIDDEN_UNTIL_END, BOARD_ORGANIZERS])
def test_every_url_of_a_hidden_phases_finding_is_404_to_the_public(client, finding, visibility):
    _in_phase(finding, visibility)
    for viewer in (None, user_create("mallory")):
        if viewer is not None:
            client.force_login(viewer)
        for url in _urls(finding):
            response = client.get(url)
            to_login = response.status_code == 302 and response["Location"].startswith(reverse("login"))
            assert response.status_code == 404 or (viewer is None and to_login), (viewer, url, response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert not any(secret in body for secret in _secrets(finding)), url
    # and a missing id answers alike
    client.logout()
    assert client.get(reverse("finding-detail", args=[finding.pk + 1000])).status_code == 404


def test_the_author_and_the_organizers_still_open_a_hidden_finding(client, finding):
    _in_phase(finding, BOARD_ORGANIZERS)
    organizer = user_create("olga")
    finding.challenge.organizers.add(organizer)
    for viewer in (finding.participant, organizer):
        client.force_login(viewer)
        for url in _urls(finding):
            assert client.get(url).status_code == 200, (viewer, url)


@pytest.mark.parametrize("visibility, ended", [(BOARD_PUBLIC, False), (BOARD_HIDDEN_UNTIL_END, True)])
def test_a_released_finding_answers_everyone_on_every_url(client, finding, visibility, ended):
    _in_phase(finding, visibility, ended=ended)
    for url in _urls(finding):
        if "submissions/" in url and "images" not in url:
            continue  # the submission's own pages stay its author's and judges'
        assert client.get(url).status_code == 200, url
