"""The one application error type: a business rule a user broke, with an exact message.

Every message carries a stable machine-readable `code` (the API's `"code"` beside `"error"`), so a
client never has to match English text: a message defined here is a `Message` whose code is its
constant's name in lower case (`DAILY_LIMIT_REACHED` → `daily_limit_reached`), kept through
`.format()`. A message defined elsewhere names its code with `Message(code, text)`.
"""
from __future__ import annotations

# The codes of errors that do not come from a message here (the API's own; see bounty.api).
GENERIC_CODE = "invalid"  # a business rule without a code of its own
INPUT_INVALID = "invalid_input"  # a field failed validation: `field` names it
LEADERBOARD_HIDDEN_CODE = "leaderboard_hidden"
PROBE_REJECTED_CODE = "probe_rejected"  # the probe file failed its checks (sandbox.probe_files says which)


class Message(str):
    """A message template with its stable code; `.format()` keeps the code."""

    code: str

    def __new__(cls, code: str, text: str):
        message = super().__new__(cls, text)
        message.code = code
        return message

    def format(self, *args, **kwargs) -> "Message":
        return Message(self.code, str.format(self, *args, **kwargs))


def code_of(message: str, default: str = GENERIC_CODE) -> str:
    return getattr(message, "code", default)


class BountyError(Exception):
    def __init__(self, message: str, *, extra: dict | None = None, field: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}
        self.code = code or code_of(message)


class NotFound(LookupError):
    """Nothing the viewer may see by that name: selectors raise it, pages and the API answer 404
    with its message (config.middleware.NotFoundAs404Middleware, bounty.api.bounty_exception_handler)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


CHALLENGE_NOT_OPEN = "This challenge is not open for submissions (it is {state})."
DAILY_LIMIT_REACHED = "You have reached today's limit of {limit} submissions for this challenge; try again tomorrow."
TOTAL_LIMIT_REACHED = "You have reached this challenge's limit of {limit} submissions."
# Messages about the probe file itself live in sandbox.probe_files (checked on upload and on the worker).
PROBE_TOO_LARGE = "The probe file is {size} bytes; the limit is {limit} bytes."
TRANSITION_REFUSED = "A submission in state '{from_state}' cannot move to '{to_state}'."
CHALLENGE_TRANSITION_REFUSED = "A challenge that is {from_state} cannot become {to_state}; from {from_state} it can become: {allowed}."
CHALLENGE_MODEL_UNKNOWN = "This installation cannot run the target model: {error}."
CHALLENGE_MODEL_FROZEN = ("The target model is frozen since the challenge opened ({name} {version}); "
                          "create a new challenge to target another model.")
CANNOT_CANCEL = "Only a submission that has not been measured yet can be cancelled (this one is {state})."
DEADLINE_PASSED = "The deadline of this challenge ({deadline}) has passed; submissions are closed."
NOT_A_TEAM_MEMBER = "You are not a member of the team {team!r}; submit on your own or ask a member to add you."
# Accounts and teams (bounty.accounts).
USERNAME_TAKEN = "This username is taken; choose another."
CONFIRMATION_INVALID = "This confirmation link is invalid or has expired; sign up again or ask for a new link."
TEAM_NAME_TAKEN = "A team called {name!r} already exists; choose another name."
TEAM_NO_SUCH_USER = "There is no confirmed account called {username!r}."
TEAM_ALREADY_MEMBER = "{username} is already a member of {team}."
TEAM_NOT_MEMBER = "Only members of {team} can change it."
TEAM_MEMBERSHIPS_REACHED = "{username} is already in {limit} teams, the most one account may be in; leave one first."
TEAM_FULL = "{team} already has {limit} members, the most a team may have."
RERUN_NEEDS_MEASUREMENT = "Only a measured submission can be re-run."
RERUN_IN_PROGRESS = "A re-run of this submission is already in progress."
PUBLISH_NEEDS_SCORE = "This finding has no score yet: rate it (or wait for its measurement) before publishing."
# Rate limits and lockouts (bounty.limits); {seconds} is when the counter resets.
LOGIN_RATE_LIMITED = "Too many login attempts from your address; try again in {seconds} s."
LOGIN_LOCKED = "Too many failed logins for this account or from your address; logins are locked for {seconds} s."
SUBMIT_RATE_LIMITED = "Too many submissions in a short time; try again in {seconds} s."
TEAM_RATE_LIMITED = "Too many team changes in a short time; try again in {seconds} s."
RESET_RATE_LIMITED = "Too many password-reset requests from your address; try again in {seconds} s."
# Uploads and texts a participant controls (bounty.uploads, bounty.forms).
UPLOAD_TOO_LARGE = "The upload is too large: the limit is {limit} bytes. Nothing was stored."
# Coordinated disclosure (bounty.services: embargo, organizer response).
EMBARGOED = ("This challenge embargoes accepted findings until {until}: accept it (decision: accepted) and it "
             "publishes itself when the embargo ends, or as soon as the organizer records a response.")
EMBARGOED_ON_ACCEPT = ("This challenge embargoes accepted findings: accept it (decision: accepted) and it publishes "
                       "itself when the embargo ends, or as soon as the organizer records a response.")
UNKNOWN_RESPONSE = "Unknown response {response!r}; choose one of: {choices}."
RESPONSE_NEEDS_VERSION = "Say which version fixes it ('fixed in version …')."
RESPONSE_NEEDS_NOTE = "Say in a note why it won't be fixed: the finding page shows it."


def _coded(namespace: dict) -> list[str]:
    """Turn this module's message constants into Messages named by their constant; return the codes."""
    codes = []
    for name, value in list(namespace.items()):
        if name.isupper() and type(value) is str and not name.endswith("_CODE") and name != "INPUT_INVALID":
            namespace[name] = Message(name.lower(), value)
            codes.append(name.lower())
    return codes


# Every code an API error body may carry, for the API's documentation (bounty.api).
API_CODES = sorted({*_coded(globals()), GENERIC_CODE, INPUT_INVALID, LEADERBOARD_HIDDEN_CODE, PROBE_REJECTED_CODE})
