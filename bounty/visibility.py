"""One rule for who may see a finding, for every URL of it (page, metrics, images.zip, bundle,
AVID report, the API, the artifacts) and every list of findings.

A finding is released when it is published (an embargoed one is still `accepted`) and the board
of its phase is visible to everyone (bounty.phases.board_visible: a public phase, or one hidden
until its end once it ended). Until then only its author, the challenge's judges and organizers
see it; everyone else gets the same 404 as for an id that does not exist, with no title, author
or score, so sequential ids tell nothing.
"""
from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q

from bounty import states
from bounty.models import Submission
from bounty.permissions import is_own_submission, user_can_judge
from bounty.phases import board_visible, public_board_q


def finding_released(*, submission: Submission, now: datetime | None = None) -> bool:
    """Published, and its phase's board is visible to anyone."""
    return submission.state == states.PUBLISHED and board_visible(phase=submission.phase, user=AnonymousUser(),
                                                                  now=now)


def finding_visible(*, submission: Submission, user) -> bool:
    """May `user` open the finding's URLs? Released, or its author, a judge or an organizer."""
    if submission.state != states.PUBLISHED:
        return False
    if finding_released(submission=submission):
        return True
    if user is None or not user.is_authenticated:
        return False
    return is_own_submission(user=user, submission=submission) or user_can_judge(user=user,
                                                                                   challenge=submission.challenge)


def released_findings_q(*, prefix: str = "", now: datetime | None = None) -> Q:
    """finding_released as a filter on submissions, for lists shown to the public."""
    return Q(**{f"{prefix}state": states.PUBLISHED}) & public_board_q(prefix=prefix, now=now)
