"""Authentication by the one normalisation of account names the limiter also keys on.

`probekit.setrules.name_key` (NFKC, then case folding): `ａｌｉｃｅ`, `ALICE` and `alice` are one
account for the login lockout (bounty.limits) and for authentication alike, so a locked account
cannot be reached under a look-alike spelling. Sign-up refuses a name taken case-insensitively.
"""
from __future__ import annotations

import unicodedata

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from probekit.setrules import name_key


def account_of(username: str):
    """The account whose name is `username` under the one normalisation, or None."""
    wanted = name_key(username.strip())
    folded = unicodedata.normalize("NFKC", username.strip())
    users = get_user_model()._default_manager.filter(username__iexact=folded)
    return next((user for user in users if name_key(user.username) == wanted), None)


class NormalizedUsernameBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = account_of(str(username))
        if user is None:
            get_user_model()().set_password(password)  # the same time as a wrong password (ModelBackend's)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
