"""Phases of a challenge: which one is open, which board a page shows, and who may see it.

A challenge without phases has one board, public, as it always had. With phases every
submission belongs to the phase open when it was made, and each phase has its own board:
public, hidden until the phase ends, or for the challenge's organizers only.
"""
from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from bounty.errors import NotFound
from bounty.models import BOARD_HIDDEN_UNTIL_END, BOARD_ORGANIZERS, BOARD_PUBLIC, Challenge, Phase

NO_SUCH_PHASE = "No such phase."
PHASE_ENDS_BEFORE_START = "A phase must end after it starts ({name!r} ends {ends} but starts {starts})."
PHASES_OVERLAP = "Phases may not overlap: {first!r} and {second!r} are both open at {at}; move one of them."
BOARD_HIDDEN = "The leaderboard of {phase!r} is hidden until the phase ends ({ends})."
BOARD_ORGANIZERS_ONLY = "The leaderboard of {phase!r} is shown to the challenge's organizers only."


def phase_open(*, challenge: Challenge, at: datetime | None = None) -> Phase | None:
    """The phase open at `at` (now by default): starts_at ≤ at < ends_at; None between phases or without any."""
    at = at or timezone.now()
    return Phase.objects.filter(challenge=challenge, starts_at__lte=at, ends_at__gt=at).order_by("starts_at").first()


def phase_list(*, challenge: Challenge) -> list[Phase]:
    return list(Phase.objects.filter(challenge=challenge).order_by("starts_at", "pk"))


def board_phase(*, challenge: Challenge, phases: list[Phase], phase_id) -> Phase | None:
    """The phase whose board a page shows: `?phase=<id>`, else the open one, else the last started.

    None for a challenge without phases (its one board); an id that is not one of the
    challenge's phases is a 404, so no phase of another challenge can be probed.
    """
    if not phases:
        return None
    if phase_id not in (None, ""):
        for phase in phases:
            if str(phase.pk) == str(phase_id).strip():
                return phase
        raise NotFound(NO_SUCH_PHASE)
    now = timezone.now()
    open_now = [phase for phase in phases if phase.starts_at <= now < phase.ends_at]
    if open_now:
        return open_now[0]
    started = [phase for phase in phases if phase.starts_at <= now]
    return started[-1] if started else phases[0]


def user_organizes(*, user, challenge: Challenge) -> bool:
    if not user.is_authenticated:
        return False
    return user.is_superuser or challenge.organizers.filter(pk=user.pk).exists()


def board_visible(*, phase: Phase | None, user, now: datetime | None = None) -> bool:
    """May `user` see the board of `phase`? The one rule for pages, the API and downloads."""
    if phase is None or phase.leaderboard_visibility == BOARD_PUBLIC:
        return True
    if phase.leaderboard_visibility == BOARD_HIDDEN_UNTIL_END and (now or timezone.now()) >= phase.ends_at:
        return True
    return user_organizes(user=user, challenge=phase.challenge)


def public_board_q(*, prefix: str = "", now: datetime | None = None) -> Q:
    """board_visible for anyone, as a filter on submissions (`prefix` reaches them through a relation).

    Counts shown to the public (the home page, the challenge list of the API) use it, so a hidden
    phase's findings are not counted either.
    """
    now = now or timezone.now()
    return (Q(**{f"{prefix}phase__isnull": True}) | Q(**{f"{prefix}phase__leaderboard_visibility": BOARD_PUBLIC})
            | Q(**{f"{prefix}phase__leaderboard_visibility": BOARD_HIDDEN_UNTIL_END, f"{prefix}phase__ends_at__lte": now}))


def board_hidden_message(*, phase: Phase) -> str:
    """What someone who may not see the board is told: the phase's name and end, nothing of its rows."""
    if phase.leaderboard_visibility == BOARD_ORGANIZERS:
        return BOARD_ORGANIZERS_ONLY.format(phase=phase.name)
    return BOARD_HIDDEN.format(phase=phase.name, ends=phase.ends_at.strftime("%Y-%m-%d %H:%M UTC"))


def check_phase_dates(phases) -> list[tuple[int, str, str]]:
    """Problems with a challenge's phases as (index, field, message): each ends after it starts, none overlap.

    `phases` are (name, starts_at, ends_at) in any order; the index is the position given.
    """
    problems = []
    for index, (name, starts, ends) in enumerate(phases):
        if starts and ends and ends <= starts:
            problems.append((index, "ends_at", PHASE_ENDS_BEFORE_START.format(name=name, ends=ends, starts=starts)))
    ordered = sorted((starts, ends, name, index) for index, (name, starts, ends) in enumerate(phases) if starts and ends)
    for (_s1, ends1, name1, _i1), (starts2, _e2, name2, index2) in zip(ordered, ordered[1:]):
        if starts2 < ends1:
            problems.append((index2, "starts_at", PHASES_OVERLAP.format(first=name1, second=name2, at=starts2)))
    return problems
