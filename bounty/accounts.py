"""Writes about people: sign-up with email confirmation, and teams (which add no quota).

Roles: every confirmed account is a participant; judges and organizers are assigned per
challenge (`Challenge.judges`, `Challenge.organizers`); organizers who set challenges up in
/admin/ are also staff. Passwords are hashed by the first of settings.PASSWORD_HASHERS (argon2).
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from bounty import errors, limits
from bounty.errors import BountyError
from bounty.models import Team


def check_signup(*, username: str) -> None:
    if get_user_model().objects.filter(username__iexact=username).exists():
        raise BountyError(errors.USERNAME_TAKEN, field="username")


def confirmation_path(*, user) -> str:
    """The path of the one-time link that activates `user` (Django's password-reset token)."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("signup-confirm", kwargs={"uidb64": uidb64, "token": token})


def user_signup(*, username: str, email: str, password: str, site_url: str):
    """Create an inactive account and email its confirmation link; it can log in once confirmed.

    An address that already has an account gets a mail saying so instead, and the caller shows
    the same page either way: the answer never tells whether an address is registered. Returns
    the new user, or None when the address was taken.
    """
    check_signup(username=username)
    User = get_user_model()
    site = site_url.rstrip("/")
    if User.objects.filter(email__iexact=email).exists():
        make_password(password)  # the same work as a real sign-up, so timing tells nothing either
        if limits.account_mail_allowed(email):
            transaction.on_commit(lambda: send_mail(
                subject="Your crop-bias bounty account",
                message=f"Someone (perhaps you) tried to sign up as {username!r} with this address, which "
                        f"already has an account. You already have an account: log in at {site}{reverse('login')}, "
                        f"or reset your password at {site}{reverse('password_reset')}.\n\n"
                        "If this was not you, ignore this message; nothing was changed.\n",
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[email],
            ))
        return None
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password, is_active=False)
    except IntegrityError:  # a concurrent sign-up took the name between the check and the insert
        raise BountyError(errors.USERNAME_TAKEN, field="username") from None
    link = site + confirmation_path(user=user)
    transaction.on_commit(lambda: send_mail(
        subject="Confirm your crop-bias bounty account",
        message=f"Hello {username},\n\nOpen this link to confirm your email address and activate your account:\n"
                f"{link}\n\nIf you did not sign up, ignore this message.\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    ))
    return user


def user_confirm_email(*, uidb64: str, token: str):
    """Activate the account the link names; a second click on a used link just finds it active."""
    User = get_user_model()
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))))
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        raise BountyError(errors.CONFIRMATION_INVALID) from None
    if user.is_active:
        return user
    if not default_token_generator.check_token(user, token):
        raise BountyError(errors.CONFIRMATION_INVALID)
    User.objects.filter(pk=user.pk).update(is_active=True)
    user.is_active = True
    return user


def _check_can_join(*, user, field: str) -> None:
    """Teams add no quota, but each is a leaderboard identity: an account may hold only a few."""
    limit = settings.MAX_TEAMS_PER_USER
    if user.teams.count() >= limit:
        raise BountyError(errors.TEAM_MEMBERSHIPS_REACHED.format(username=user.get_username(), limit=limit),
                          field=field)


@transaction.atomic
def team_create(*, name: str, creator) -> Team:
    name = name.strip()
    _check_can_join(user=creator, field="name")
    if Team.objects.filter(name__iexact=name).exists():
        raise BountyError(errors.TEAM_NAME_TAKEN.format(name=name), field="name")
    team = Team.objects.create(name=name)
    team.members.add(creator)
    return team


def _check_member(*, team: Team, user) -> None:
    if not team.members.filter(pk=user.pk).exists():
        raise BountyError(errors.TEAM_NOT_MEMBER.format(team=team.name))


@transaction.atomic
def team_add_member(*, team: Team, username: str, actor) -> None:
    """A member adds another confirmed account to the team."""
    _check_member(team=team, user=actor)
    user = get_user_model().objects.filter(username__iexact=username.strip(), is_active=True).first()
    if user is None:
        raise BountyError(errors.TEAM_NO_SUCH_USER.format(username=username.strip()), field="username")
    if team.members.filter(pk=user.pk).exists():
        raise BountyError(errors.TEAM_ALREADY_MEMBER.format(username=user.username, team=team.name), field="username")
    if team.members.count() >= settings.MAX_TEAM_MEMBERS:
        raise BountyError(errors.TEAM_FULL.format(team=team.name, limit=settings.MAX_TEAM_MEMBERS), field="username")
    _check_can_join(user=user, field="username")
    team.members.add(user)


@transaction.atomic
def team_leave(*, team: Team, user) -> None:
    """Leave a team; its submissions stay the team's. The last member leaving dissolves an unused team."""
    _check_member(team=team, user=user)
    team.members.remove(user)
    if not team.members.exists() and not team.submissions.exists():
        team.delete()
