"""The submission and challenge state tables, and the compare-and-set that enforces them."""
from __future__ import annotations

import pytest

from bounty import services, states
from bounty.errors import BountyError
from tests.factories import challenge_create, submission_create, user_create

ALL = [name for name, _label in states.SUBMISSION_STATES]
TERMINAL = (states.PUBLISHED, states.FAILED, states.CANCELLED)


def test_every_state_has_a_row_and_every_target_is_a_state():
    assert set(states.SUBMISSION_TRANSITIONS) == set(ALL)
    for targets in states.SUBMISSION_TRANSITIONS.values():
        assert targets <= set(ALL)


def test_every_state_is_reachable_from_submitted():
    seen, frontier = {states.SUBMITTED}, [states.SUBMITTED]
    while frontier:
        for target in states.SUBMISSION_TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(ALL)


@pytest.mark.parametrize("state", TERMINAL)
def test_terminal_states_go_nowhere(state):
    assert states.SUBMISSION_TRANSITIONS[state] == set()


@pytest.mark.parametrize("source,target", [(s, t) for s in ALL for t in ALL
                                           if s != t and t not in states.SUBMISSION_TRANSITIONS[s]])
def test_a_move_outside_the_table_is_refused_before_touching_the_row(source, target):
    with pytest.raises(ValueError, match="cannot move"):
        services.submission_transition(submission_id=0, from_states=(source,), to_state=target)


@pytest.mark.django_db
def test_a_move_from_a_state_the_row_has_left_does_nothing_and_is_not_audited():
    submission = submission_create(challenge=challenge_create(), participant=user_create("ann"))
    events = submission.events.count()
    assert services.submission_transition(submission_id=submission.pk, from_states=(states.RUNNING,),
                                          to_state=states.MEASURING) is False
    submission.refresh_from_db()
    assert submission.state == states.QUEUED and submission.events.count() == events


@pytest.mark.parametrize("source,target,ok", [
    (states.DRAFT, states.OPEN, True), (states.OPEN, states.CLOSED, True), (states.CLOSED, states.OPEN, True),
    (states.CLOSED, states.JUDGING, True), (states.JUDGING, states.FINISHED, True),
    (states.DRAFT, states.FINISHED, False), (states.FINISHED, states.OPEN, False), (states.OPEN, states.DRAFT, False),
])
def test_challenge_transitions_follow_their_table(source, target, ok):
    if ok:
        services.check_challenge_transition(from_state=source, to_state=target)
    else:
        with pytest.raises(BountyError, match=f"cannot become {target}"):
            services.check_challenge_transition(from_state=source, to_state=target)


@pytest.mark.django_db
def test_the_admin_refuses_a_challenge_state_jump(admin_client):
    challenge = challenge_create(slug="jump")
    response = admin_client.post(f"/admin/bounty/challenge/{challenge.pk}/change/", {
        "slug": "jump", "title": challenge.title, "state": states.DRAFT, "model_name": challenge.model_name,
    })
    assert response.status_code == 200 and "cannot become draft" in response.content.decode()
    challenge.refresh_from_db()
    assert challenge.state == states.OPEN
