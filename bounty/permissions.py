"""Who may do what: one function per rule, used by every page, API view and service.

- may judge: `user_can_judge` (a judge or organizer of the challenge, or a superuser), and the
  challenges a user judges (`judge_challenges`, the same rule as a query);
- own submission: `is_own_submission` (the participant who submitted it), and
  `may_judge_submission` (may judge its challenge and it is not their own);
- blind review: `identity_hidden` (the rubric is blind and no decision was made yet).

Which findings a viewer may see is `bounty.visibility` (released, or their own or theirs to judge: these rules).
"""
from __future__ import annotations

from django.db.models import Q, QuerySet

from bounty import states
from bounty.models import Challenge, Submission
from grading.rubric import Rubric

# Blind review lifts once a decision is made; needs_info is a question, not a decision.
DECIDED_STATES = (states.ACCEPTED, states.DUPLICATE, states.NOT_REPRODUCIBLE, states.OUT_OF_SCOPE, states.PUBLISHED)
HIDDEN_NAME = "Participant (hidden until decided)"


def user_can_judge(*, user, challenge: Challenge) -> bool:
    """A judge or organizer of the challenge, or a superuser."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return challenge.judges.filter(pk=user.pk).exists() or challenge.organizers.filter(pk=user.pk).exists()


def judge_challenges(*, user) -> QuerySet[Challenge]:
    """The challenges `user_can_judge` allows, as one query."""
    if not user.is_authenticated:
        return Challenge.objects.none()
    if user.is_superuser:
        return Challenge.objects.all()
    return Challenge.objects.filter(Q(judges=user) | Q(organizers=user)).distinct()


def is_own_submission(*, user, submission: Submission) -> bool:
    """The participant who submitted it (a judge never judges their own)."""
    return user.is_authenticated and submission.participant_id == user.pk


def may_judge_submission(*, user, submission: Submission) -> bool:
    """May judge its challenge, and it is not their own."""
    return user_can_judge(user=user, challenge=submission.challenge) and not is_own_submission(
        user=user, submission=submission)


def identity_hidden(*, submission: Submission, rubric: Rubric) -> bool:
    """Blind review: the participant's name is hidden from judges until a decision is made."""
    return rubric.blind and submission.state not in DECIDED_STATES
