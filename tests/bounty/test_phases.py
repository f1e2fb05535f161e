"""Phases: a submission belongs to the phase open when it was made; each phase has its own board and quota."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from bounty import errors, phases, services
from bounty.errors import BountyError
from bounty.models import BOARD_HIDDEN_UNTIL_END, BOARD_ORGANIZERS, BOARD_PUBLIC, Phase, Submission
from tests.bounty.test_leaderboard import published_rows
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


def phase_create(challenge, name, *, start_days, end_days, visibility=BOARD_PUBLIC, **limits) -> Phase:
    now = timezone.now()
    return Phase.objects.create(challenge=challenge, name=name, starts_at=now + timedelta(days=start_days),
                                ends_at=now + timedelta(days=end_days), leaderboard_visibility=visibility, **limits)


def published_in(phase, scores, **kw) -> list[Submission]:
    rows = published_rows(phase.challenge, scores, **kw)
    Submission.objects.filter(pk__in=[row.pk for row in rows]).update(phase=phase)
    return rows


def test_a_submission_belongs_to_the_phase_open_when_it_was_made(challenge, alice):
    phase_create(challenge, "Warm-up", start_days=-10, end_days=-5)
    open_now = phase_create(challenge, "Main", start_days=-1, end_days=5)
    assert submission_create(challenge=challenge, participant=alice).phase == open_now


def test_between_phases_a_submission_has_no_phase(challenge, alice):
    phase_create(challenge, "Later", start_days=2, end_days=5)
    assert submission_create(challenge=challenge, participant=alice).phase is None


def test_a_phase_with_its_own_limit_counts_only_its_own_submissions(alice):
    challenge = challenge_create(slug="phased-quota", total_limit=3, daily_limit=10)
    for _ in range(2):
        submission_create(challenge=challenge, participant=alice)  # before any phase: no phase
    phase_create(challenge, "Final", start_days=-1, end_days=5, total_limit=1)
    usage = services.quota_usage(challenge=challenge, participant=alice)
    assert (usage["total"], usage["total_limit"], usage["daily_limit"], usage["left"]) == (0, 1, 10, 1)
    submission_create(challenge=challenge, participant=alice)
    with pytest.raises(BountyError) as refused:
        submission_create(challenge=challenge, participant=alice)
    assert refused.value.message == errors.TOTAL_LIMIT_REACHED.format(limit=1)


def test_a_phase_without_limits_keeps_the_challenges_quota_over_all_submissions(alice):
    challenge = challenge_create(slug="phased-plain", total_limit=2)
    submission_create(challenge=challenge, participant=alice)
    phase_create(challenge, "Main", start_days=-1, end_days=5)
    submission_create(challenge=challenge, participant=alice)
    with pytest.raises(BountyError) as refused:
        submission_create(challenge=challenge, participant=alice)
    assert refused.value.message == errors.TOTAL_LIMIT_REACHED.format(limit=2)


def board(client, challenge, **params):
    return client.get(reverse("leaderboard", args=[challenge.slug]), params)


def api_board(client, challenge, **params):
    return client.get(reverse("api-leaderboard", args=[challenge.slug]), params)


def test_each_phase_has_its_own_board_and_ranks(client, challenge):
    first = phase_create(challenge, "One", start_days=-10, end_days=-5)
    second = phase_create(challenge, "Two", start_days=-1, end_days=5)
    published_in(first, [90.0])
    published_in(second, [10.0, 20.0])
    rows = board(client, challenge).context["rows"]  # default: the open phase
    assert [(r.rank, r.final_score) for r in rows] == [(1, 20.0), (2, 10.0)]
    rows = board(client, challenge, phase=first.pk).context["rows"]
    assert [(r.rank, r.final_score) for r in rows] == [(1, 90.0)]
    body = api_board(client, challenge, phase=first.pk).json()
    assert body["count"] == 1 and body["phase"]["name"] == "One" and body["results"][0]["rank"] == 1


@pytest.mark.parametrize("visibility", [BOARD_HIDDEN_UNTIL_END, BOARD_ORGANIZERS])
def test_a_hidden_board_leaks_no_row_count_or_title(client, challenge, alice, visibility):
    phase = phase_create(challenge, "Secret", start_days=-1, end_days=5, visibility=visibility)
    published_in(phase, [10.0, 20.0, 30.0])
    for viewer in (None, alice):
        if viewer:
            client.force_login(viewer)
        response = board(client, challenge, phase=phase.pk)
        page = response.content.decode()
        assert response.status_code == 200 and escape(phases.board_hidden_message(phase=phase)) in page
        assert "Finding " not in page and "findings)" not in page and 'id="leaderboard"' not in page
        api = api_board(client, challenge, phase=phase.pk)
        assert api.status_code == 403 and "Finding" not in api.content.decode() and "count" not in api.json()
        assert api.json()["error"] == phases.board_hidden_message(phase=phase)


def test_a_hidden_until_end_board_opens_when_the_phase_ends(client, challenge):
    phase = phase_create(challenge, "Done", start_days=-10, end_days=-1, visibility=BOARD_HIDDEN_UNTIL_END)
    published_in(phase, [10.0])
    assert [r.title for r in board(client, challenge, phase=phase.pk).context["rows"]] == ["Finding 0"]
    assert api_board(client, challenge, phase=phase.pk).json()["count"] == 1


def test_organizers_see_a_board_hidden_from_participants(client, challenge):
    phase = phase_create(challenge, "Secret", start_days=-1, end_days=5, visibility=BOARD_ORGANIZERS)
    published_in(phase, [10.0])
    olga = user_create("olga")
    challenge.organizers.add(olga)
    client.force_login(olga)
    assert [r.title for r in board(client, challenge, phase=phase.pk).context["rows"]] == ["Finding 0"]
    assert api_board(client, challenge, phase=phase.pk).json()["count"] == 1


def test_a_participant_sees_their_own_scores_on_a_hidden_board_when_the_challenge_allows(client, challenge):
    phase = phase_create(challenge, "Secret", start_days=-1, end_days=5, visibility=BOARD_HIDDEN_UNTIL_END)
    rows = published_in(phase, [10.0, 42.5])  # p0 sent the first, p1 the second
    client.force_login(rows[1].participant)
    page = board(client, challenge, phase=phase.pk).content.decode()
    assert 'id="own-results"' in page and "42.5" in page and "Finding 1" in page
    assert "Finding 0" not in page and "10.0" not in page
    challenge.participants_see_own_score = False
    challenge.save()
    page = board(client, challenge, phase=phase.pk).content.decode()
    assert "own-results" not in page and "42.5" not in page


def test_a_phase_of_another_challenge_is_not_found(client, challenge):
    phase_create(challenge, "Mine", start_days=-1, end_days=5)
    other = phase_create(challenge_create(slug="other"), "Theirs", start_days=-1, end_days=5,
                         visibility=BOARD_ORGANIZERS)
    assert board(client, challenge, phase=other.pk).status_code == 404
    assert board(client, challenge, phase="1;drop").status_code == 404
    assert api_board(client, challenge, phase=other.pk).status_code == 404


def test_a_challenge_without_phases_shows_its_one_board(client, challenge):
    published_rows(challenge, [5.0])
    response = board(client, challenge)
    assert [r.title for r in response.context["rows"]] == ["Finding 0"]
    assert "leaderboard-phases" not in response.content.decode()
    assert api_board(client, challenge).json()["phase"] is None


def test_overlapping_or_backwards_phases_are_named():
    now = timezone.now()
    day = timedelta(days=1)
    problems = phases.check_phase_dates([("A", now, now + 3 * day), ("B", now + 2 * day, now + 4 * day),
                                         ("C", now + 6 * day, now + 5 * day)])
    assert [(index, field) for index, field, _ in problems] == [(2, "ends_at"), (1, "starts_at")]
    assert "'A' and 'B'" in problems[1][2] and "'C' ends" in problems[0][2]


def test_the_public_counts_leave_out_a_hidden_phases_findings(client, challenge):
    published_rows(challenge, [1.0])  # before phases: counted
    published_in(phase_create(challenge, "Open", start_days=-3, end_days=-2), [2.0])
    published_in(phase_create(challenge, "Ended", start_days=-2, end_days=-1, visibility=BOARD_HIDDEN_UNTIL_END), [3.0])
    published_in(phase_create(challenge, "Now", start_days=-1, end_days=5, visibility=BOARD_HIDDEN_UNTIL_END), [4.0])
    published_in(phase_create(challenge, "Staff", start_days=5, end_days=6, visibility=BOARD_ORGANIZERS), [5.0])
    listed = client.get(reverse("api-challenge-list")).json()
    listed = listed["results"] if isinstance(listed, dict) else listed
    assert [c["n_published"] for c in listed if c["slug"] == challenge.slug] == [3]


def test_a_hidden_boards_csv_is_refused_with_nothing_of_its_rows(client, challenge):
    phase = phase_create(challenge, "Secret", start_days=-1, end_days=5, visibility=BOARD_HIDDEN_UNTIL_END)
    published_in(phase, [10.0, 20.0])
    response = client.get(reverse("leaderboard", args=[challenge.slug]), {"phase": phase.pk, "format": "csv"})
    assert response.status_code == 403 and "Finding" not in response.content.decode()
