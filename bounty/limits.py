"""The one limiter of the pages and the API: named counters in the shared cache (django-ratelimit).

Every limit has one group and one rate setting, and the pages and the API call the same function,
so a login on the form and a token request, or a submission through either, count together.
Past a limit the caller raises `LimitReached`: the pages answer it with a 429 page
(RATELIMIT_VIEW), the API with a 429 `{"error", "field", "extra": {"retry_after"}}`.
"""
from __future__ import annotations

from django.conf import settings
from django_ratelimit.core import get_usage
from django_ratelimit.exceptions import Ratelimited

from bounty import errors
from probekit.setrules import name_key


class LimitReached(Ratelimited):
    """Too many attempts; `retry_after` is how many seconds until the counter's window ends."""

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, retry_after)


def _count(request, *, group: str, key, rate: str, increment: bool) -> dict | None:
    return get_usage(request, group=group, key=key, rate=rate, increment=increment)


def _by(value: str):
    """A ratelimit key of a value the caller already knows (an account name, an address), in the
    normalisation authentication uses (NFKC and case folding, bounty.auth_backend)."""
    normalized = name_key(value.strip())
    return lambda _group, _request: normalized


def _raise_if(usage: dict | None, message: str, *, at_limit: bool = False) -> None:
    if usage is None:
        return
    over = usage["count"] >= usage["limit"] if at_limit else usage["should_limit"]
    if over:
        raise LimitReached(message.format(seconds=max(1, usage["time_left"])), retry_after=usage["time_left"])


# --- logins: the login form and /api/token/ ---------------------------------------------------


def _failure_counters(username: str):
    yield "login-failures-account", _by(username), settings.RATE_LOGIN_FAILURES
    yield "login-failures-ip", "ip", settings.RATE_LOGIN_IP_FAILURES


def check_login_allowed(request, *, username: str) -> None:
    """Before a password is checked: every attempt of a client address counts, and an account or
    an address with too many recent failures is locked out, even with the right password."""
    _raise_if(_count(request, group="login-ip", key="ip", rate=settings.RATE_LOGIN, increment=True),
              errors.LOGIN_RATE_LIMITED)
    for group, key, rate in _failure_counters(username):
        _raise_if(_count(request, group=group, key=key, rate=rate, increment=False), errors.LOGIN_LOCKED,
                  at_limit=True)


def record_login_failure(request, *, username: str) -> None:
    for group, key, rate in _failure_counters(username):
        _count(request, group=group, key=key, rate=rate, increment=True)


# --- submissions, teams, password resets --------------------------------------------------------


def check_submit_rate(request) -> None:
    """One counter per account for the submit form and the API."""
    _raise_if(_count(request, group="submit", key="user", rate=settings.RATE_SUBMIT, increment=True),
              errors.SUBMIT_RATE_LIMITED)


def check_team_rate(request) -> None:
    """Creating teams and adding members, per account."""
    _raise_if(_count(request, group="teams", key="user", rate=settings.RATE_TEAMS, increment=True),
              errors.TEAM_RATE_LIMITED)


def check_reset_rate(request) -> None:
    """Password-reset requests per client address, whatever address they name."""
    _raise_if(_count(request, group="password-reset-ip", key="ip", rate=settings.RATE_RESET, increment=True),
              errors.RESET_RATE_LIMITED)


def account_mail_allowed(address: str) -> bool:
    """At most RATE_ACCOUNT_MAIL account mails (reset links, sign-up notices) to one address.

    Past it the mail is silently dropped: the page answers the same, so it tells nothing about
    whether the address has an account.
    """
    # The address is the whole key: no request is read (method ALL, a key function of our own).
    usage = _count(None, group="account-mail", key=_by(address), rate=settings.RATE_ACCOUNT_MAIL, increment=True)
    return usage is None or not usage["should_limit"]
