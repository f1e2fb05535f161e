"""Submission and challenge states: one enum per state machine, used by pages, API and tests
(docs/architecture.md). The short names (`states.QUEUED`) are the enum's own members."""
from django.db import models


class SubmissionState(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    MEASURING = "measuring", "Measuring"
    MEASURED = "measured", "Measured"
    IN_REVIEW = "in_review", "In review"
    ACCEPTED = "accepted", "Accepted"
    DUPLICATE = "duplicate", "Duplicate"
    NOT_REPRODUCIBLE = "not_reproducible", "Not reproducible"
    OUT_OF_SCOPE = "out_of_scope", "Out of scope"
    NEEDS_INFO = "needs_info", "Needs info"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed"
    PLATFORM_ERROR = "platform_error", "Platform error"
    CANCELLED = "cancelled", "Cancelled"


class ChallengeState(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    JUDGING = "judging", "Judging"
    FINISHED = "finished", "Finished"


SUBMITTED, QUEUED, RUNNING, MEASURING, MEASURED = (
    SubmissionState.SUBMITTED, SubmissionState.QUEUED, SubmissionState.RUNNING, SubmissionState.MEASURING,
    SubmissionState.MEASURED)
IN_REVIEW, ACCEPTED, DUPLICATE, NOT_REPRODUCIBLE, OUT_OF_SCOPE, NEEDS_INFO, PUBLISHED = (
    SubmissionState.IN_REVIEW, SubmissionState.ACCEPTED, SubmissionState.DUPLICATE, SubmissionState.NOT_REPRODUCIBLE,
    SubmissionState.OUT_OF_SCOPE, SubmissionState.NEEDS_INFO, SubmissionState.PUBLISHED)
FAILED, PLATFORM_ERROR, CANCELLED = SubmissionState.FAILED, SubmissionState.PLATFORM_ERROR, SubmissionState.CANCELLED
SUBMISSION_STATES = SubmissionState.choices

DECISIONS = (ACCEPTED, DUPLICATE, NOT_REPRODUCIBLE, OUT_OF_SCOPE, NEEDS_INFO)
# Where each state may go next; anything else is refused.
SUBMISSION_TRANSITIONS = {
    SUBMITTED: {QUEUED, CANCELLED},
    QUEUED: {RUNNING, CANCELLED},
    RUNNING: {MEASURING, FAILED, PLATFORM_ERROR, CANCELLED},
    MEASURING: {MEASURED, PLATFORM_ERROR, FAILED},
    MEASURED: {IN_REVIEW},
    IN_REVIEW: set(DECISIONS),
    NEEDS_INFO: {IN_REVIEW},
    ACCEPTED: {PUBLISHED, IN_REVIEW},
    DUPLICATE: {IN_REVIEW},
    NOT_REPRODUCIBLE: {IN_REVIEW},
    OUT_OF_SCOPE: {IN_REVIEW},
    PUBLISHED: set(),
    FAILED: set(),
    PLATFORM_ERROR: {QUEUED},
    CANCELLED: set(),
}
ACTIVE_STATES = (SUBMITTED, QUEUED, RUNNING, MEASURING)
CANCELLABLE_STATES = (SUBMITTED, QUEUED, RUNNING)

DRAFT, OPEN, CLOSED, JUDGING, FINISHED = (
    ChallengeState.DRAFT, ChallengeState.OPEN, ChallengeState.CLOSED, ChallengeState.JUDGING, ChallengeState.FINISHED)
CHALLENGE_STATES = ChallengeState.choices
CHALLENGE_TRANSITIONS = {DRAFT: {OPEN}, OPEN: {CLOSED}, CLOSED: {JUDGING, OPEN}, JUDGING: {FINISHED}, FINISHED: set()}
