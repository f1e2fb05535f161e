"""Submission and challenge states: one list, used by pages, API and tests (docs/architecture.md)."""

SUBMITTED = "submitted"
QUEUED = "queued"
RUNNING = "running"
MEASURING = "measuring"
MEASURED = "measured"
IN_REVIEW = "in_review"
ACCEPTED = "accepted"
DUPLICATE = "duplicate"
NOT_REPRODUCIBLE = "not_reproducible"
OUT_OF_SCOPE = "out_of_scope"
NEEDS_INFO = "needs_info"
PUBLISHED = "published"
FAILED = "failed"
PLATFORM_ERROR = "platform_error"
CANCELLED = "cancelled"

SUBMISSION_STATES = [
    (SUBMITTED, "Submitted"),
    (QUEUED, "Queued"),
    (RUNNING, "Running"),
    (MEASURING, "Measuring"),
    (MEASURED, "Measured"),
    (IN_REVIEW, "In review"),
    (ACCEPTED, "Accepted"),
    (DUPLICATE, "Duplicate"),
    (NOT_REPRODUCIBLE, "Not reproducible"),
    (OUT_OF_SCOPE, "Out of scope"),
    (NEEDS_INFO, "Needs info"),
    (PUBLISHED, "Published"),
    (FAILED, "Failed"),
    (PLATFORM_ERROR, "Platform error"),
    (CANCELLED, "Cancelled"),
]
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

DRAFT = "draft"
OPEN = "open"
CLOSED = "closed"
JUDGING = "judging"
FINISHED = "finished"
CHALLENGE_STATES = [(DRAFT, "Draft"), (OPEN, "Open"), (CLOSED, "Closed"), (JUDGING, "Judging"), (FINISHED, "Finished")]
CHALLENGE_TRANSITIONS = {DRAFT: {OPEN}, OPEN: {CLOSED}, CLOSED: {JUDGING, OPEN}, JUDGING: {FINISHED}, FINISHED: set()}
