"""Judge console: judges of a challenge only (others get 404)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from bounty import selectors, services, states
from bounty.errors import BountyError
from bounty.models import Submission


def _judged_submissions(user):
    qs = Submission.objects.select_related("challenge", "participant")
    if user.is_superuser:
        return qs
    return qs.filter(Q(challenge__judges=user) | Q(challenge__organizers=user)).distinct()


@login_required
def judge_queue(request):
    submissions = _judged_submissions(request.user)
    if not request.user.is_superuser and not submissions.exists() and not request.user.judged_challenges.exists():
        raise Http404("Not a judge.")
    state = request.GET.get("state") or states.IN_REVIEW
    rows = submissions.filter(state=state).order_by("created_at")[:200]
    return render(request, "grading/judge_queue.html", {"rows": rows, "state": state, "states": states.SUBMISSION_STATES})


@login_required
@require_POST
def judge_publish(request, submission_id: int):
    submission = selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
    if not selectors.user_can_judge(user=request.user, challenge=submission.challenge):
        raise Http404("No such submission.")
    try:
        services.submission_publish(submission=submission, actor=request.user)
    except BountyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Published #{submission.pk}.")
    return redirect("judge-queue")
