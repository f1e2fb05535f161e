"""Reads of the bounty app."""
from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from bounty import states
from bounty.models import Challenge, Submission


def challenge_get(*, slug: str) -> Challenge:
    challenge = Challenge.objects.filter(slug=slug).exclude(state=states.DRAFT).first()
    if challenge is None:
        raise Http404("No such challenge.")
    return challenge


def challenge_list() -> QuerySet[Challenge]:
    return Challenge.objects.exclude(state=states.DRAFT).annotate(
        n_published=Count("submissions", filter=Q(submissions__state=states.PUBLISHED))
    ).order_by("-created_at")


def submission_get_for_user(*, submission_id: int, user) -> Submission:
    """The participant's own submission, or any for a judge/organizer of its challenge; else 404."""
    submission = (
        Submission.objects.select_related("challenge", "participant", "team").filter(pk=submission_id).first()
    )
    if submission is None or not user.is_authenticated:
        raise Http404("No such submission.")
    if submission.participant_id == user.pk or user_can_judge(user=user, challenge=submission.challenge):
        return submission
    raise Http404("No such submission.")


def user_can_judge(*, user, challenge: Challenge) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return challenge.judges.filter(pk=user.pk).exists() or challenge.organizers.filter(pk=user.pk).exists()


def submission_list_for_participant(*, user, challenge: Challenge | None = None) -> QuerySet[Submission]:
    qs = Submission.objects.filter(participant=user).select_related("challenge")
    return qs.filter(challenge=challenge) if challenge else qs


def leaderboard(*, challenge: Challenge) -> list[dict]:
    """Published results ranked by final score; ties share a rank. One query."""
    rows = (
        Submission.objects.filter(challenge=challenge, state=states.PUBLISHED)
        .select_related("participant", "team")
        .order_by("-final_score", "published_at", "pk")
    )
    ranked, previous, rank = [], object(), 0
    for position, submission in enumerate(rows, start=1):
        if submission.final_score != previous:
            rank, previous = position, submission.final_score
        ranked.append({"rank": rank, "submission": submission})
    return ranked


def queue_position(*, submission: Submission) -> int | None:
    if submission.state != states.QUEUED:
        return None
    return Submission.objects.filter(state=states.QUEUED, state_changed_at__lt=submission.state_changed_at).count() + 1
