"""The organizer edits a challenge's settings as typed fields in the admin; the same JSON is stored."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.html import escape

from bounty import phases, selectors, states
from bounty.admin_forms import BAD_COLOUR, BAD_RATIO, LIMIT_NOT_POSITIVE, RATIO_NOT_POSITIVE, ChallengeAdminForm
from bounty.models import Phase
from tests.factories import challenge_create

pytestmark = pytest.mark.django_db

NO_PHASES = {"phases-TOTAL_FORMS": "0", "phases-INITIAL_FORMS": "0", "phases-MIN_NUM_FORMS": "0",
             "phases-MAX_NUM_FORMS": "1000"}


def change_data(challenge, **fields) -> dict:
    """What the admin's change form posts for `challenge`, with `fields` changed."""
    data = {"slug": challenge.slug, "title": challenge.title, "state": challenge.state,
            "model_name": challenge.model_name, "model_version": challenge.model_version,
            "rubric_name": challenge.rubric_name, "rubric_version": challenge.rubric_version,
            "daily_limit": challenge.daily_limit, "total_limit": challenge.total_limit,
            "participants_see_own_score": "on", "aspect_ratios": "", "model_visibility": challenge.model_visibility,
            **NO_PHASES}
    data.update(fields)
    return data


def change_url(challenge) -> str:
    return f"/admin/bounty/challenge/{challenge.pk}/change/"


def test_typed_settings_are_stored_as_the_json_the_pipeline_reads(admin_client):
    challenge = challenge_create(slug="typed", limits={})
    response = admin_client.post(change_url(challenge), change_data(
        challenge, model_variants=["u2netp@int8", "spectral-residual@32px"], aspect_ratios="0.5, 1, 2",
        compose_background="#102030", compose_padding="4", compose_scaling="fixed_height", limit_wall_s="30",
        limit_pids="64"))
    assert response.status_code == 302, response.content.decode()[:2000]
    challenge.refresh_from_db()
    assert challenge.model_variants == ["u2netp@int8", "spectral-residual@32px"]
    assert challenge.aspect_ratios == [0.5, 1.0, 2.0]
    assert challenge.compose_options == {"background": [16, 32, 48], "padding": 4, "scaling": "fixed_height"}
    assert challenge.limits == {"wall_s": 30.0, "pids": 64}
    limits = selectors.challenge_limits(challenge=challenge)
    assert (limits.wall_s, limits.pids, limits.cpu_s) == (30.0, 64, 240)


def test_the_change_page_shows_the_stored_settings_in_their_fields(admin_client):
    challenge = challenge_create(slug="shown", model_variants=["u2netp@160px"], aspect_ratios=[0.75, 1.5],
                                 compose_options={"background": [0, 0, 255], "padding": 8},
                                 limits={"memory_bytes": 123456789})
    page = admin_client.get(change_url(challenge)).content.decode()
    assert 'value="0.75, 1.5"' in page and 'value="#0000ff"' in page and 'value="8"' in page
    assert 'value="123456789"' in page and re.search(r'value="u2netp@160px"[^>]*checked', page)
    assert not re.search(r'value="u2netp@int8"[^>]*checked', page)
    assert "ends the run a few seconds later" in page  # a limit's help text comes from sandbox.limits


def test_blank_fields_mean_the_defaults(admin_client):
    challenge = challenge_create(slug="blank", compose_options={"padding": 3}, limits={"wall_s": 10})
    assert admin_client.post(change_url(challenge), change_data(challenge)).status_code == 302
    challenge.refresh_from_db()
    assert (challenge.compose_options, challenge.limits) == ({}, {})
    assert challenge.aspect_ratios == [0.56, 1.0, 1.14, 2.0]


@pytest.mark.parametrize(("fields", "message"), [
    ({"aspect_ratios": "1.0, wide"}, BAD_RATIO.format(value="wide")),
    ({"aspect_ratios": "1.0, -2"}, RATIO_NOT_POSITIVE.format(value="-2")),
    ({"aspect_ratios": "0"}, RATIO_NOT_POSITIVE.format(value="0")),
    ({"aspect_ratios": "nan"}, RATIO_NOT_POSITIVE.format(value="nan")),
    ({"compose_background": "white"}, BAD_COLOUR),
    ({"limit_wall_s": "0"}, LIMIT_NOT_POSITIVE.format(value=0.0)),
    ({"limit_pids": "0"}, "Ensure this value is greater than or equal to 1."),
    ({"compose_padding": "-1"}, "Ensure this value is greater than or equal to 0."),
    ({"model_variants": ["u2netp@evil"]}, "Select a valid choice. u2netp@evil is not one of the available choices."),
])
def test_a_bad_setting_is_named_and_nothing_is_stored(admin_client, fields, message):
    challenge = challenge_create(slug="bad", limits={"wall_s": 60})
    response = admin_client.post(change_url(challenge), change_data(challenge, **fields))
    assert response.status_code == 200 and escape(message) in response.content.decode()
    challenge.refresh_from_db()
    assert challenge.limits == {"wall_s": 60}


def test_the_state_machine_check_stays_on_the_form():
    challenge = challenge_create(slug="machine")
    form = ChallengeAdminForm(data=change_data(challenge, state=states.DRAFT), instance=challenge)
    assert not form.is_valid() and "cannot become draft" in form.errors["state"][0]


def test_overlapping_phases_are_refused_in_the_admin(admin_client):
    challenge = challenge_create(slug="phased")
    now = timezone.now()
    fmt = "%Y-%m-%d"
    rows = {"phases-TOTAL_FORMS": "2"}
    for i, (name, start, end) in enumerate([("One", 0, 3), ("Two", 2, 5)]):
        rows.update({f"phases-{i}-name": name, f"phases-{i}-leaderboard_visibility": "public",
                     f"phases-{i}-starts_at_0": (now + timedelta(days=start)).strftime(fmt),
                     f"phases-{i}-starts_at_1": "00:00:00",
                     f"phases-{i}-ends_at_0": (now + timedelta(days=end)).strftime(fmt),
                     f"phases-{i}-ends_at_1": "00:00:00"})
    response = admin_client.post(change_url(challenge), change_data(challenge, **rows))
    page = response.content.decode()
    assert response.status_code == 200 and "Phases may not overlap" in page
    assert not Phase.objects.filter(challenge=challenge).exists()
    rows["phases-1-starts_at_0"] = (now + timedelta(days=3)).strftime(fmt)
    assert admin_client.post(change_url(challenge), change_data(challenge, **rows)).status_code == 302
    assert [p.name for p in phases.phase_list(challenge=challenge)] == ["One", "Two"]
