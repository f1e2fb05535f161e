"""Participant and public pages: a few lines each, logic lives in services and selectors."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_ratelimit.decorators import ratelimit

from bounty import accounts, bundles, downloads, exports, limits, notifications, selectors, services, uploads
from bounty import leaderboard as boards
from bounty.avid import avid_report
from bounty.errors import BountyError
from bounty.forms import (
    RATING_PREFIX,
    CappedAuthenticationForm,
    SignupForm,
    SubmissionForm,
    TeamCreateForm,
    TeamMemberForm,
    ThrottledPasswordResetForm,
)
from bounty.permissions import identity_hidden, is_own_submission
from grading.rubric import rubric_for_challenge


def _served_file(response, *, filename: str, attachment: bool = False):
    """A file made from a probe's output: a fixed type, a name, and a policy that runs nothing even if
    opened on its own (nosniff is on every response, set by SecurityMiddleware)."""
    response["Content-Disposition"] = f'{"attachment" if attachment else "inline"}; filename="{filename}"'
    response["Content-Security-Policy"] = "default-src 'none'; sandbox; frame-ancestors 'none'"
    return response


@require_GET
def home(request):
    return render(request, "bounty/home.html", {"challenges": selectors.challenge_list()})


@require_GET
def challenge_detail(request, slug: str):
    challenge = selectors.challenge_get(slug=slug)
    context = {"challenge": challenge, **selectors.challenge_card(challenge=challenge)}
    if request.user.is_authenticated:
        context["quota"] = services.quota_usage(challenge=challenge, participant=request.user)
    return render(request, "bounty/challenge_detail.html", context)


def _submission_form(request, challenge, initial=None):
    return SubmissionForm(
        request.POST or None, request.FILES or None, initial=initial,
        harm_choices=selectors.harm_choices(challenge=challenge), rubric=rubric_for_challenge(challenge),
        teams=selectors.team_list_for_user(user=request.user),
    )


def rate_limited(request, exception):
    """Too many attempts (RATELIMIT_VIEW): a plain 429 saying when to try again."""
    response = render(request, "bounty/rate_limited.html", {"message": getattr(exception, "message", "")},
                      status=429)
    if isinstance(exception, limits.LimitReached):
        response["Retry-After"] = str(exception.retry_after)
    return response


@login_required
def challenge_submit(request, slug: str):
    challenge = selectors.challenge_get(slug=slug)
    upload_error = None
    if request.method == "POST":
        limits.check_submit_rate(request)  # before the body is read
        try:
            uploads.check_upload(request)
        except BountyError as exc:
            upload_error = exc
    initial = None
    if request.method == "GET" and request.GET.get("from"):
        # Resubmit: start from an earlier submission's text (the probe is uploaded again).
        earlier = selectors.submission_get_for_user(submission_id=_int(request.GET["from"]), user=request.user)
        if is_own_submission(user=request.user, submission=earlier) and earlier.challenge_id == challenge.pk:
            assessment = earlier.self_assessment or {}
            initial = {"title": earlier.title, "writeup": earlier.writeup, "harm_type": earlier.harm_type,
                       "self_justification": assessment.get("justification", ""), "team": earlier.team_id,
                       **{f"{RATING_PREFIX}{k}": v for k, v in assessment.get("ratings", {}).items()}}
    form = _submission_form(request, challenge, initial)
    if upload_error is not None:
        # The parse stopped at the file, so later fields are missing: the cap is the one reason to give.
        form.is_valid()
        form.errors.clear()
        form.add_error("probe", upload_error.message)
    elif request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["probe"]
        try:
            submission = services.submission_create(
                challenge=challenge,
                participant=request.user,
                title=form.cleaned_data["title"],
                probe_name=upload.name,
                probe_content=upload.read(),
                writeup=form.cleaned_data["writeup"],
                self_assessment=form.self_assessment(),
                team=form.cleaned_data.get("team"),
            )
        except BountyError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return redirect("submission-detail", submission_id=submission.pk)
    quota = services.quota_usage(challenge=challenge, participant=request.user)
    return render(request, "bounty/submit.html", {"challenge": challenge, "form": form, "quota": quota})


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such submission.") from None


@login_required
@require_GET
def submission_list(request):
    submissions = selectors.submission_list_for_participant(user=request.user)
    return render(request, "bounty/submission_list.html", {"submissions": submissions})


@login_required
@require_GET
def submission_detail(request, submission_id: int):
    submission = selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
    context = selectors.submission_page(submission=submission)
    context["thread_url"] = reverse("submission-thread", args=[submission.pk])
    # A judge opening the participant's page sees no more of who sent it than the judge console shows.
    context["identity_hidden"] = not is_own_submission(user=request.user, submission=submission) and identity_hidden(
        submission=submission, rubric=selectors.rubric_of(submission.challenge))
    template = "bounty/_submission_state.html" if request.GET.get("partial") else "bounty/submission_detail.html"
    return render(request, template, context)


@never_cache
@login_required
@require_GET
def submission_status(request, submission_id: int):
    """The small JSON the submission page polls while the submission is active."""
    submission = selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
    return JsonResponse(selectors.submission_status(submission=submission))


@login_required
@require_GET
def submission_log(request, submission_id: int, stream: str):
    """The latest run's stdout or stderr tail as plain text."""
    submission = selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
    run = selectors.latest_run(submission=submission)
    if run is None or stream not in ("stdout", "stderr"):
        raise Http404("No such log.")
    text = run.stdout_tail if stream == "stdout" else run.stderr_tail
    return _served_file(HttpResponse(text, content_type="text/plain; charset=utf-8"),
                        filename=f"submission-{submission.pk}-{stream}.txt")


@require_GET
def submission_artifact(request, submission_id: int, name: str):
    """A measurement's plot or contact sheet: to its owner and judges, to everyone once published."""
    submission = selectors.submission_get_visible(submission_id=submission_id, user=request.user)
    handle = selectors.artifact_open(submission=submission, name=name)
    return _served_file(FileResponse(handle, content_type="image/png"), filename=f"{name}.png")


@login_required
@require_POST
def submission_cancel(request, submission_id: int):
    submission = selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
    if not is_own_submission(user=request.user, submission=submission):
        raise Http404("No such submission.")
    try:
        services.submission_cancel(submission=submission, actor=request.user)
    except BountyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Cancelled. It does not count against your quota.")
    return redirect("submission-detail", submission_id=submission.pk)


@require_GET
def leaderboard(request, slug: str):
    challenge = selectors.challenge_get(slug=slug)
    if request.GET.get("format") == "csv":
        return _leaderboard_csv(request, challenge)
    board = boards.leaderboard_board(challenge=challenge, user=request.user, params=request.GET)
    params = request.GET.copy()
    params.pop("page", None)
    return render(request, "bounty/leaderboard.html", {
        "challenge": challenge, "board": board, "page": board.page,
        "rows": board.page.object_list if board.page is not None else [],
        "query": boards.LeaderboardQuery.from_params(request.GET),
        "harm_choices": selectors.harm_choices(challenge=challenge), "base_params": params.urlencode(),
        "sorts": [("rank", "Rank"), ("-date", "Newest"), ("date", "Oldest"), ("title", "Title")]
        + ([("provisional", "Provisional score")] if challenge.show_provisional else []),
    })


def _leaderboard_csv(request, challenge):
    """The whole board (the page's phase, filters and order) as a CSV download; 403 when hidden."""
    params = request.GET.copy()
    params.pop("page", None)
    board = boards.leaderboard_board(challenge=challenge, user=request.user, params=params,
                                     per_page=exports.LEADERBOARD_CSV_MAX_ROWS)
    if board.page is None:
        return HttpResponse(board.hidden_message, status=403, content_type="text/plain; charset=utf-8")
    text = exports.leaderboard_csv(
        board=board, show_provisional=challenge.show_provisional,
        finding_url=lambda pk: request.build_absolute_uri(reverse("finding-detail", args=[pk])))
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="leaderboard-{challenge.slug}.csv"'
    return response


@require_GET
def finding_detail(request, submission_id: int):
    submission = selectors.finding_get(submission_id=submission_id, user=request.user)
    context = {**selectors.submission_page(submission=submission),
               "bundle_name": bundles.download_name(submission, "-bundle.zip")}
    return render(request, "bounty/finding_detail.html", context)


@require_GET
def finding_metrics(request, submission_id: int):
    """The metrics document, byte for byte as measured (its sha256 is on the page)."""
    submission = selectors.finding_get(submission_id=submission_id, user=request.user)
    measurement = selectors.latest_measurement(submission=submission)
    if measurement is None or not measurement.document_json:
        raise Http404("This finding has no metrics document.")
    response = HttpResponse(measurement.document_json, content_type="application/json")
    return _served_file(response, filename=bundles.download_name(submission, "-metrics.json"), attachment=True)


@require_GET
def finding_image_set(request, submission_id: int):
    submission = selectors.finding_get(submission_id=submission_id, user=request.user)
    response = FileResponse(downloads.image_set_zip_open(submission=submission), content_type="application/zip")
    return _served_file(response, filename=bundles.download_name(submission, "-images.zip"), attachment=True)


def finding_urls(request, submission) -> dict[str, str]:
    """The absolute addresses of a published finding's page and downloads (bundle, AVID report, API)."""
    return {key: request.build_absolute_uri(reverse(name, args=[submission.pk]))
            for key, name in (("finding", "finding-detail"), ("metrics", "finding-metrics"),
                              ("bundle", "finding-bundle"), ("avid", "finding-avid"))}


@require_GET
def finding_bundle(request, submission_id: int):
    """The reproducibility bundle: probe, image set, stored document, settings; `probekit verify` reads it."""
    submission = selectors.finding_get(submission_id=submission_id, user=request.user)
    handle = downloads.bundle_zip_open(submission=submission, url=finding_urls(request, submission)["finding"])
    response = FileResponse(handle, content_type="application/zip")
    return _served_file(response, filename=bundles.download_name(submission, "-bundle.zip"), attachment=True)


@require_GET
def finding_avid(request, submission_id: int):
    """The finding as an AVID report (bounty/avid.py, its schema beside it)."""
    submission = selectors.finding_get(submission_id=submission_id, user=request.user)
    report = avid_report(submission=submission, urls=finding_urls(request, submission))
    response = JsonResponse(report, json_dumps_params={"indent": 1, "ensure_ascii": False})
    return _served_file(response, filename=bundles.download_name(submission, "-avid.json"), attachment=False)


# --- accounts and teams -------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Django's login, counted by the limiter the token API shares (per address, per account)."""

    form_class = CappedAuthenticationForm

    def post(self, request, *args, **kwargs):
        limits.check_login_allowed(request, username=request.POST.get("username", ""))
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        limits.record_login_failure(self.request, username=form.data.get("username", ""))
        return super().form_invalid(form)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset, throttled per client and per address; the page never says if an account exists."""

    form_class = ThrottledPasswordResetForm

    def post(self, request, *args, **kwargs):
        limits.check_reset_rate(request)
        return super().post(request, *args, **kwargs)


@ratelimit(key="ip", rate=settings.RATE_SIGNUP, method="POST", block=True)
def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accounts.user_signup(
                username=form.cleaned_data["username"], email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"], site_url=request.build_absolute_uri("/"),
            )
        except BountyError as exc:
            form.add_error(exc.field, exc.message)
        else:  # the same page, byte for byte, for a fresh and a registered address; the mail tells which
            return render(request, "registration/signup_done.html")
    return render(request, "registration/signup.html", {"form": form})


@require_GET
def signup_confirm(request, uidb64: str, token: str):
    try:
        accounts.user_confirm_email(uidb64=uidb64, token=token)
    except BountyError as exc:
        return render(request, "registration/signup_confirm.html", {"error": exc.message}, status=400)
    messages.success(request, "Your email address is confirmed. Log in to submit.")
    return redirect("login")


@login_required
def team_list(request):
    if request.method == "POST":
        limits.check_team_rate(request)
    form = TeamCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = accounts.team_create(name=form.cleaned_data["name"], creator=request.user)
        except BountyError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Team {team.name} created.")
            return redirect("team-list")
    teams = selectors.team_list_for_user(user=request.user)
    return render(request, "bounty/teams.html", {"teams": teams, "form": form, "member_form": TeamMemberForm()})


@login_required
@require_POST
def team_add_member(request, team_id: int):
    limits.check_team_rate(request)
    team = selectors.team_get_for_member(team_id=team_id, user=request.user)
    form = TeamMemberForm(request.POST)
    try:
        if not form.is_valid():
            raise BountyError("Give the username of the account to add.")
        accounts.team_add_member(team=team, username=form.cleaned_data["username"], actor=request.user)
    except BountyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{form.cleaned_data['username']} joined {team.name}.")
    return redirect("team-list")


@login_required
@require_POST
def team_leave(request, team_id: int):
    team = selectors.team_get_for_member(team_id=team_id, user=request.user)
    accounts.team_leave(team=team, user=request.user)
    messages.success(request, f"You left {team.name}.")
    return redirect("team-list")


@login_required
def notification_settings(request):
    """Turn the state-change e-mails on or off (a checkbox: absent from the POST means off)."""
    if request.method == "POST":
        notifications.state_emails_set(user=request.user, enabled=request.POST.get("state_emails") == "on")
        messages.success(request, "Your e-mail settings are saved.")
        return redirect("notification-settings")
    return render(request, "bounty/notification_settings.html",
                  {"state_emails": notifications.state_emails_enabled(user=request.user)})
