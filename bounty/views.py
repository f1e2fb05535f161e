"""Participant and public pages: a few lines each, logic lives in services and selectors."""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from bounty import selectors, services, states
from bounty.errors import BountyError
from bounty.forms import SubmissionForm
from bounty.models import Submission


def home(request):
    return render(request, "bounty/home.html", {"challenges": selectors.challenge_list()})


def challenge_detail(request, slug: str):
    challenge = selectors.challenge_get(slug=slug)
    return render(request, "bounty/challenge_detail.html", {"challenge": challenge})


@login_required
def challenge_submit(request, slug: str):
    challenge = selectors.challenge_get(slug=slug)
    form = SubmissionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["probe"]
        try:
            submission = services.submission_create(
                challenge=challenge,
                participant=request.user,
                title=form.cleaned_data["title"],
                probe_name=upload.name,
                probe_content=upload.read(),
                writeup=form.cleaned_data["writeup"],
                self_assessment={
                    "harm_type": form.cleaned_data["harm_type"],
                    "justification": form.cleaned_data["self_justification"],
                },
            )
        except BountyError as exc:
            form.add_error(exc.field, exc.message)
        else:
            return redirect("submission-detail", submission_id=submission.pk)
    return render(request, "bounty/submit.html", {"challenge": challenge, "form": form})


@login_required
def submission_detail(request, submission_id: int):
    submission = selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
    context = _submission_context(submission)
    template = "bounty/_submission_state.html" if request.GET.get("partial") else "bounty/submission_detail.html"
    return render(request, template, context)


def _submission_context(submission: Submission) -> dict:
    run = submission.runs.order_by("-queued_at").first()
    measurement = submission.measurements.filter(status="done").first() or submission.measurements.first()
    document = json.loads(measurement.document_json) if measurement and measurement.document_json else None
    return {
        "submission": submission,
        "run": run,
        "measurement": measurement,
        "document": document,
        "queue_position": selectors.queue_position(submission=submission),
        "active": submission.state in states.ACTIVE_STATES,
        "events": submission.events.all(),
    }


@login_required
@require_POST
def submission_cancel(request, submission_id: int):
    submission = selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
    if submission.participant_id != request.user.pk:
        raise Http404("No such submission.")
    try:
        services.submission_cancel(submission=submission, actor=request.user)
    except BountyError as exc:
        messages.error(request, exc.message)
    return redirect("submission-detail", submission_id=submission.pk)


def leaderboard(request, slug: str):
    challenge = selectors.challenge_get(slug=slug)
    rows = selectors.leaderboard(challenge=challenge)
    return render(request, "bounty/leaderboard.html", {"challenge": challenge, "rows": rows})


def finding_detail(request, submission_id: int):
    submission = get_object_or_404(
        Submission.objects.select_related("challenge", "participant", "team"),
        pk=submission_id, state=states.PUBLISHED,
    )
    return render(request, "bounty/finding_detail.html", _submission_context(submission))
