"""Judge console: judges of a challenge only (everyone else gets 404). Views parse, call one
service or selector, and answer; the rules live in review.services and review.selectors."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from bounty import selectors as bounty_selectors
from bounty import states
from bounty.errors import BountyError
from bounty.permissions import is_own_submission, judge_challenges
from grading.rubric import rubric_form_rows, rubric_summary
from pipeline import queue as pipeline_queue
from review import selectors, services
from review.forms import CommentForm, DecisionForm, QueueFilterForm, ReasonForm, ReviewForm


def _back(submission_id: int, anchor: str = ""):
    response = redirect("judge-submission", submission_id=submission_id)
    response["Location"] += f"#{anchor}" if anchor else ""
    return response


def _say(request, level: int, text: str, *, section: str, field: str | None = None) -> None:
    """A message shown inside `section` of the judge page (beside `field` when one is named), so
    the page that lands at the section's anchor shows it in view."""
    messages.add_message(request, level, text, extra_tags=f"at:{section}" + (f" field:{field}" if field else ""))


def _refused(request, submission_id: int, text: str, *, section: str, field: str | None = None):
    _say(request, messages.ERROR, text, section=section, field=field)
    return _back(submission_id, section)


def _notices(request) -> dict:
    """This request's messages by page section: {"page": [...], section: {"messages": [...],
    "fields": {field: text}}}; a message with no section stays at the top of the page."""
    notices: dict = {"page": []}
    for message in messages.get_messages(request):
        tags = dict(tag.split(":", 1) for tag in message.extra_tags.split() if ":" in tag)
        if "at" not in tags:
            notices["page"].append(message)
            continue
        box = notices.setdefault(tags["at"], {"messages": [], "fields": {}, "invalid": False})
        if tags.get("field"):
            box["fields"][tags["field"]] = str(message)
        else:
            box["messages"].append(message)
        box["invalid"] = box["invalid"] or message.level >= messages.ERROR
    return notices


@login_required
@require_GET
def judge_queue(request):
    selectors.check_is_judge(user=request.user)
    form = QueueFilterForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    state = request.GET.get("state", states.IN_REVIEW)  # the default view is "what waits for a judge"
    rows = selectors.judge_queue(
        user=request.user, challenge_slug=data.get("challenge") or "", state=state,
        assigned_to_me=bool(data.get("mine")), disagreement_only=bool(data.get("disagreement")),
    )
    challenges = list(judge_challenges(user=request.user).order_by("title"))
    chosen = next((c for c in challenges if c.slug == data.get("challenge")), None)
    return render(request, "grading/judge_queue.html", {
        "rows": rows, "state": state, "states": states.SUBMISSION_STATES, "challenges": challenges,
        "challenge": chosen, "mine": bool(data.get("mine")), "disagreement": bool(data.get("disagreement")),
        "agreement": selectors.challenge_agreement(challenge=chosen) if chosen else None,
    })


def _page(request, submission, *, initial: dict | None = None, status: int = 200):
    context = selectors.judge_page(submission=submission, user=request.user)
    if initial is not None:
        context["initial"] = initial
    rubric = context["rubric"]
    notices = _notices(request)
    wrong = notices.get("rubric", {}).get("fields", {})
    rows = rubric_form_rows(rubric=rubric, initial=context["initial"])
    for row in rows:  # the template cannot look a field up by a computed name, so each row carries its own
        row["error"] = wrong.get(f"why_{row['id']}", "")
        for part in row["parts"]:
            part["error"] = wrong.get(f"rate_{part['id']}", "")
    context.update(
        rubric_rows=rows,
        rubric_card=rubric_summary(rubric=rubric),
        decisions=states.DECISIONS,
        reopenable=submission.state in services.REOPENABLE_STATES,
        notices=notices,
    )
    return render(request, "grading/judge_submission.html", context, status=status)


@login_required
@require_GET
def judge_submission(request, submission_id: int):
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    return _page(request, submission)


@login_required
@require_POST
def judge_review(request, submission_id: int):
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    form = ReviewForm(request.POST, rubric=selectors.rubric_of(submission.challenge))
    if not form.is_valid():
        for name, errors in form.errors.items():
            _say(request, messages.ERROR, " ".join(errors), section="rubric", field=name)
        return _back(submission.pk, "rubric")
    try:
        review = services.review_save(
            submission=submission, judge=request.user, harm_type=form.cleaned_data["harm_type"],
            ratings=form.ratings(), justifications=form.justifications(), comment=form.cleaned_data["comment"],
        )
    except BountyError as exc:
        # The form is shown again with what the judge typed, so this answers the POST itself.
        _say(request, messages.ERROR, exc.message, section="rubric", field=f"why_{exc.field}" if exc.field else None)
        initial = {"harm_type": form.cleaned_data["harm_type"], "ratings": form.ratings(),
                   "justifications": form.justifications(), "comment": form.cleaned_data["comment"]}
        return _page(request, submission, initial=initial, status=400)
    _say(request, messages.SUCCESS, f"Your review is saved: {review.score:.2f} points.", section="rubric")
    return _back(submission.pk, "rubric")


@login_required
@require_POST
def judge_score_preview(request, submission_id: int):
    """The rubric form's live score, from the engine: POST the form, get {score, formula, flags}."""
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    form = ReviewForm(request.POST, rubric=selectors.rubric_of(submission.challenge))
    form.is_valid()  # unknown levels are dropped by the form; the engine names what is missing
    return JsonResponse(selectors.score_preview(submission=submission, harm_type=request.POST.get("harm_type", ""),
                                                ratings=form.ratings()))


@login_required
@require_POST
def judge_decide(request, submission_id: int):
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        name, errors = next(iter(form.errors.items()))
        text = "Choose a decision." if name == "decision" else " ".join(errors)
        return _refused(request, submission.pk, text, section="decision", field=None if name == "decision" else name)
    try:
        services.submission_decide(
            submission=submission, judge=request.user, decision=form.cleaned_data["decision"],
            reason=form.cleaned_data["reason"], duplicate_of_id=form.cleaned_data["duplicate_of"],
        )
    except BountyError as exc:
        return _refused(request, submission.pk, exc.message, section="decision", field=exc.field)
    _say(request, messages.SUCCESS, f"#{submission.pk} is now {submission.get_state_display().lower()}.", section="decision")
    return _back(submission.pk, "decision")


@login_required
@require_POST
def judge_reopen(request, submission_id: int):
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    form = ReasonForm(request.POST)
    form.is_valid()
    try:
        services.submission_reopen(submission=submission, judge=request.user, reason=form.cleaned_data.get("reason", ""))
    except BountyError as exc:
        return _refused(request, submission.pk, exc.message, section="reopen", field=exc.field)
    return _back(submission.pk, "decision")


@login_required
@require_POST
def judge_rerun(request, submission_id: int):
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    try:
        pipeline_queue.submission_rerun(submission=submission, actor=request.user)
    except BountyError as exc:
        return _refused(request, submission.pk, exc.message, section="rerun")
    _say(request, messages.SUCCESS, "Re-run queued: the same probe on the same model version. "
         "The comparison appears here when it is measured.", section="rerun")
    return _back(submission.pk, "rerun")


@login_required
@require_GET
def judge_rerun_status(request, submission_id: int):
    """The latest re-run's stage and, once measured, its comparison block as HTML (the page
    polls this while a re-run is in progress and swaps the block in place)."""
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    measurement = selectors.measurement_of_record(submission=submission)
    rerun = selectors.rerun_comparison(measurement=measurement)
    html = render_to_string("grading/_rerun.html", {"rerun": rerun, "measurement": measurement}, request=request)
    return JsonResponse({"status": rerun["status"] if rerun else "none", "done": bool(rerun and rerun["done"]),
                         "identical": rerun["identical"] if rerun and rerun["done"] else None, "html": html})


@login_required
@require_POST
def judge_publish(request, submission_id: int):
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    try:
        services.submission_publish(submission=submission, judge=request.user)
    except BountyError as exc:
        if request.POST.get("next") == "queue":
            messages.error(request, exc.message)
            return redirect("judge-queue")
        return _refused(request, submission.pk, exc.message, section="decision")
    _say(request, messages.SUCCESS, f"Published #{submission.pk}.", section="decision")
    if request.POST.get("next") == "queue":
        return redirect("judge-queue")
    return _back(submission.pk, "decision")


@login_required
@require_POST
def judge_assign(request, submission_id: int):
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    username = (request.POST.get("username") or "").strip()
    judge = get_user_model().objects.filter(username=username).first() if username else request.user
    try:
        if judge is None:
            raise BountyError(services.ASSIGN_NOT_JUDGE.format(username=username))
        services.review_assign(submission=submission, judge=judge, assigned_by=request.user)
    except BountyError as exc:
        return _refused(request, submission.pk, exc.message, section="assignment")
    return _back(submission.pk, "assignment")


@login_required
@require_POST
def judge_conflict(request, submission_id: int):
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    form = ReasonForm(request.POST)
    form.is_valid()
    try:
        services.review_declare_conflict(submission=submission, judge=request.user, note=form.cleaned_data.get("reason", ""))
    except BountyError as exc:
        return _refused(request, submission.pk, exc.message, section="assignment", field="reason")
    return _back(submission.pk, "assignment")


@login_required
@require_POST
def judge_comment(request, submission_id: int):
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    form = CommentForm(request.POST)
    form.is_valid()
    try:
        services.comment_create(submission=submission, author=request.user, body=form.cleaned_data.get("body", ""),
                                to_participant=bool(form.cleaned_data.get("to_participant")))
    except BountyError as exc:
        return _refused(request, submission.pk, exc.message, section="comments", field=exc.field)
    return _back(submission.pk, "comments")


@login_required
@require_GET
def judge_artifact(request, submission_id: int, measurement_id: int, filename: str):
    """Contact sheets and plots of a measurement, for the judges of its challenge only."""
    submission = selectors.submission_get_for_judge(submission_id=submission_id, user=request.user)
    handle = selectors.artifact_open(submission=submission, measurement_id=measurement_id, filename=filename)
    return FileResponse(handle, content_type="image/png", filename=filename)


@login_required
@require_POST
def participant_thread_reply(request, submission_id: int):
    """The participant answers the judges' question (needs_info). Mounted at
    /submissions/<id>/thread/ — not under /judge/, which participants never see."""
    submission = bounty_selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
    if not is_own_submission(user=request.user, submission=submission):
        raise Http404("No such submission.")
    form = CommentForm(request.POST)
    if not form.is_valid():  # say why a too-long reply was refused instead of dropping it
        messages.error(request, "Your reply: " + " ".join(form.errors.get("body", ["is not valid."])))
        return redirect("submission-detail", submission_id=submission.pk)
    try:
        services.thread_reply(submission=submission, participant=request.user, body=form.cleaned_data.get("body", ""))
    except BountyError as exc:
        messages.error(request, exc.message)
    return redirect("submission-detail", submission_id=submission.pk)
