"""Writes of the judge console: assignments, reviews, decisions, publishing, comments and the
needs_info thread.

`check_*` validates what a judge or participant can get wrong (BountyError with an exact
message); the writes then go through bounty.services.submission_transition, so every state
change is a compare-and-set with an audit row (who, when, from, to, why). Accepting a finding
has one path (`submission_decide`), which publishing from review goes through as well.
"""
from __future__ import annotations

from django.db import transaction

from bounty import services as bounty_services
from bounty import states
from bounty.errors import BountyError
from bounty.models import Submission
from bounty.permissions import is_own_submission, user_can_judge
from grading import services as grading_services
from grading.rubric import RubricError, rubric_for_challenge, score_finding
from grading.selectors import document_of, measurement_of_record, replication_status
from review.models import Review, ReviewAssignment, SubmissionComment

NOT_A_JUDGE = "Only the judges of this challenge can do that."
OWN_SUBMISSION = "You cannot judge your own submission; another judge has to."
NOT_REVIEWABLE = "Reviews are open while a submission is in review or needs info (this one is {state})."
CONFLICT_DECLARED = "You declared a conflict of interest on this submission, so you cannot rate or decide it."
JUSTIFY_FACTOR = "Give a sentence of justification for {factor}."
NOT_DECIDABLE = "Only a submission in review can be decided (this one is {state})."
UNKNOWN_DECISION = "Unknown decision {decision!r}; choose one of: {choices}."
REASON_REQUIRED = "Say why in a sentence: the participant and the audit trail will show it."
DUPLICATE_NEEDS_ORIGINAL = "Name the earlier submission this one duplicates."
DUPLICATE_NOT_EARLIER = "#{original} is not an earlier submission of this challenge, so it cannot be the original."
NOT_REOPENABLE = "Only a decided, unpublished submission can be reopened (this one is {state})."
EMPTY_COMMENT = "The comment is empty."
NOT_YOUR_SUBMISSION = "Only the participant who submitted this finding can answer its thread."
THREAD_CLOSED = "The thread is open while the judges need information (this submission is {state})."
ASSIGN_NOT_JUDGE = "{username} is not a judge of this challenge."
ACCEPTED_ON_PUBLISH = "accepted and published by a judge"

REVIEWABLE_STATES = (states.IN_REVIEW, states.NEEDS_INFO)
REOPENABLE_STATES = (states.ACCEPTED, states.DUPLICATE, states.NOT_REPRODUCIBLE, states.OUT_OF_SCOPE)


def check_judge(*, submission: Submission, judge) -> None:
    if not user_can_judge(user=judge, challenge=submission.challenge):
        raise BountyError(NOT_A_JUDGE)
    if is_own_submission(user=judge, submission=submission):
        raise BountyError(OWN_SUBMISSION)


def _has_conflict(*, submission: Submission, judge) -> bool:
    return Review.objects.filter(submission=submission, judge=judge, conflict_of_interest=True).exists()


def review_assign(*, submission: Submission, judge, assigned_by) -> ReviewAssignment:
    """Assign a judge; a judge may assign themself, an organizer anyone who judges the challenge."""
    if assigned_by.pk != judge.pk and not user_can_judge(user=assigned_by, challenge=submission.challenge):
        raise BountyError(NOT_A_JUDGE)
    if not user_can_judge(user=judge, challenge=submission.challenge):
        raise BountyError(ASSIGN_NOT_JUDGE.format(username=judge.get_username()))
    if is_own_submission(user=judge, submission=submission):
        raise BountyError(OWN_SUBMISSION)
    with transaction.atomic(durable=True):
        assignment, created = ReviewAssignment.objects.get_or_create(
            submission=submission, judge=judge, defaults={"assigned_by": assigned_by}
        )
        if created:
            who = "themself" if assigned_by.pk == judge.pk else f"by {assigned_by.get_username()}"
            bounty_services.submission_audit(submission=submission, actor=assigned_by,
                                             reason=f"{judge.get_username()} assigned to review ({who})")
    return assignment


@transaction.atomic(durable=True)
def review_declare_conflict(*, submission: Submission, judge, note: str) -> Review:
    """The judge steps aside: their ratings, if any, stop counting."""
    if not user_can_judge(user=judge, challenge=submission.challenge):
        raise BountyError(NOT_A_JUDGE)
    if not note.strip():
        raise BountyError(REASON_REQUIRED)
    review, _ = Review.objects.update_or_create(
        submission=submission, judge=judge,
        defaults={"conflict_of_interest": True, "score": None, "comment": f"Conflict of interest: {note.strip()}"},
    )
    bounty_services.submission_audit(submission=submission, actor=judge,
                                     reason=f"{judge.get_username()} declared a conflict of interest: {note.strip()}")
    return review


def check_review(*, submission: Submission, judge, harm_type: str, ratings: dict, justifications: dict):
    """Validate a judge's ratings against the challenge's rubric; return the score it gives."""
    check_judge(submission=submission, judge=judge)
    if submission.state not in REVIEWABLE_STATES:
        raise BountyError(NOT_REVIEWABLE.format(state=submission.get_state_display().lower()))
    if _has_conflict(submission=submission, judge=judge):
        raise BountyError(CONFLICT_DECLARED)
    rubric = rubric_for_challenge(submission.challenge)
    try:
        result = score_finding(rubric, harm_type=harm_type, ratings=ratings,
                               document=document_of(measurement_of_record(submission=submission)) or {},
                               replication=replication_status(submission=submission))
    except RubricError as exc:
        raise BountyError(str(exc)) from None
    for factor in rubric.factors_for(rubric.harm(harm_type)):
        if not (justifications.get(factor["id"]) or "").strip():
            raise BountyError(JUSTIFY_FACTOR.format(factor=factor["label"].lower()), field=factor["id"])
    return rubric, result


@transaction.atomic(durable=True)
def review_save(*, submission: Submission, judge, harm_type: str, ratings: dict[str, str],
                justifications: dict[str, str], comment: str = "") -> Review:
    """Create or update the judge's review with the score the engine computes (never the browser's)."""
    rubric, result = check_review(
        submission=submission, judge=judge, harm_type=harm_type, ratings=ratings, justifications=justifications
    )
    applicable = {f["id"] for f in rubric.factors_for(rubric.harm(harm_type))}
    review, _ = Review.objects.update_or_create(
        submission=submission, judge=judge,
        defaults={
            "harm_type": harm_type,
            "ratings": {k: v for k, v in ratings.items() if v},
            "justifications": {k: v.strip() for k, v in justifications.items() if k in applicable and v.strip()},
            "comment": comment.strip(), "score": result.value, "conflict_of_interest": False,
        },
    )
    ReviewAssignment.objects.get_or_create(submission=submission, judge=judge, defaults={"assigned_by": judge})
    return review


def submission_decide(*, submission: Submission, judge, decision: str, reason: str,
                      duplicate_of_id: int | None = None) -> None:
    """in_review → accepted / duplicate / not_reproducible / out_of_scope / needs_info, audited."""
    check_judge(submission=submission, judge=judge)
    if decision not in states.DECISIONS:
        raise BountyError(UNKNOWN_DECISION.format(decision=decision, choices=", ".join(states.DECISIONS)))
    if _has_conflict(submission=submission, judge=judge):
        raise BountyError(CONFLICT_DECLARED)
    if not reason.strip():
        raise BountyError(REASON_REQUIRED, field="reason")
    fields: dict = {}
    if decision == states.DUPLICATE:
        if not duplicate_of_id:
            raise BountyError(DUPLICATE_NEEDS_ORIGINAL, field="duplicate_of")
        # The first reporter keeps priority: the original must be an earlier submission here.
        original = Submission.objects.filter(
            pk=duplicate_of_id, challenge=submission.challenge, created_at__lte=submission.created_at
        ).exclude(pk=submission.pk).first()
        if original is None:
            raise BountyError(DUPLICATE_NOT_EARLIER.format(original=duplicate_of_id), field="duplicate_of")
        fields["duplicate_of"] = original
        reason = f"{reason.strip()} (duplicate of #{original.pk})"
    with transaction.atomic():
        if decision == states.ACCEPTED:  # recorded by the move itself: submission_transition writes every field
            score = grading_services.score_final_create(submission=submission)
            fields["final_score"] = score.value if score else None
        moved = bounty_services.submission_transition(
            submission_id=submission.pk, from_states=(states.IN_REVIEW,), to_state=decision,
            reason=reason.strip(), actor=judge, **fields,
        )
        if not moved:
            submission.refresh_from_db()
            raise BountyError(NOT_DECIDABLE.format(state=submission.get_state_display().lower()))
        if decision == states.NEEDS_INFO:
            SubmissionComment.objects.create(submission=submission, author=judge, body=reason.strip(), to_participant=True)
    submission.refresh_from_db()


@transaction.atomic(durable=True)
def submission_publish(*, submission: Submission, judge) -> None:
    """accepted → published; from review, accept first through `submission_decide` (the same
    conflict-of-interest check and final score), all in one transaction."""
    check_judge(submission=submission, judge=judge)
    if _has_conflict(submission=submission, judge=judge):
        raise BountyError(CONFLICT_DECLARED)
    bounty_services.check_publish_allowed(submission=submission)
    if submission.state == states.IN_REVIEW:
        submission_decide(submission=submission, judge=judge, decision=states.ACCEPTED, reason=ACCEPTED_ON_PUBLISH)
    bounty_services.submission_publish_transition(submission=submission, actor=judge, reason="published")


@transaction.atomic(durable=True)
def submission_reopen(*, submission: Submission, judge, reason: str) -> None:
    """A decided, unpublished submission goes back to review (audited)."""
    check_judge(submission=submission, judge=judge)
    if not reason.strip():
        raise BountyError(REASON_REQUIRED, field="reason")
    moved = bounty_services.submission_transition(
        submission_id=submission.pk, from_states=REOPENABLE_STATES, to_state=states.IN_REVIEW,
        reason=reason.strip(), actor=judge, duplicate_of=None,
    )
    if not moved:
        submission.refresh_from_db()
        raise BountyError(NOT_REOPENABLE.format(state=submission.get_state_display().lower()))
    submission.refresh_from_db()


@transaction.atomic(durable=True)
def comment_create(*, submission: Submission, author, body: str, to_participant: bool = False) -> SubmissionComment:
    """A judges-only note, or (to_participant) a message in the participant's thread."""
    check_judge(submission=submission, judge=author)
    if not body.strip():
        raise BountyError(EMPTY_COMMENT, field="body")
    return SubmissionComment.objects.create(submission=submission, author=author, body=body.strip(), to_participant=to_participant)


@transaction.atomic(durable=True)
def thread_reply(*, submission: Submission, participant, body: str, back_to_review: bool = True) -> SubmissionComment:
    """The participant answers a needs_info question; by default the finding returns to review."""
    if not is_own_submission(user=participant, submission=submission):
        raise BountyError(NOT_YOUR_SUBMISSION)
    if submission.state != states.NEEDS_INFO:
        raise BountyError(THREAD_CLOSED.format(state=submission.get_state_display().lower()))
    if not body.strip():
        raise BountyError(EMPTY_COMMENT, field="body")
    comment = SubmissionComment.objects.create(submission=submission, author=participant, body=body.strip(), to_participant=True)
    if back_to_review:
        bounty_services.submission_transition(
            submission_id=submission.pk, from_states=(states.NEEDS_INFO,), to_state=states.IN_REVIEW,
            reason="the participant answered the judges' question", actor=participant,
        )
        submission.refresh_from_db()
    return comment
