"""The one application error type: a business rule a user broke, with an exact message."""
from __future__ import annotations


class BountyError(Exception):
    def __init__(self, message: str, *, extra: dict | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


CHALLENGE_NOT_OPEN = "This challenge is not open for submissions (it is {state})."
DAILY_LIMIT_REACHED = "You have reached today's limit of {limit} submissions for this challenge; try again tomorrow."
TOTAL_LIMIT_REACHED = "You have reached this challenge's limit of {limit} submissions."
# Messages about the probe file itself live in sandbox.probe_files (checked on upload and on the worker).
PROBE_TOO_LARGE = "The probe file is {size} bytes; the limit is {limit} bytes."
TRANSITION_REFUSED = "A submission in state '{from_state}' cannot move to '{to_state}'."
CANNOT_CANCEL = "Only a submission that has not been measured yet can be cancelled (this one is {state})."
