"""Writes of the bounty app: submissions and their state machine (docs/architecture.md).

Every state move is a compare-and-set on the row (`UPDATE … WHERE state IN (…)`), so two
workers or a redelivered task can never both make the same move.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from bounty import errors, states
from bounty.errors import BountyError
from bounty.models import (
    RESPONSE_FIXED,
    RESPONSE_WONT_FIX,
    VENDOR_RESPONSES,
    Challenge,
    FindingSerial,
    Phase,
    Submission,
    SubmissionEvent,
)
from bounty.notifications import notify_state_change
from bounty.phases import phase_open
from bounty.webhooks import webhooks_schedule
from grading import selectors as grading_selectors
from grading import services as grading_services
from grading.intervals import headline_interval
from probekit.bundle import model_facts
from sandbox.probe_files import ProbeFileError, check_probe_file, check_probe_syntax

logger = logging.getLogger(__name__)


def check_probe_upload(*, name: str, content: bytes) -> None:
    """Validate an uploaded probe before anything is stored; raise BountyError(field="probe")."""
    limit = settings.MAX_PROBE_UPLOAD_BYTES
    if len(content) > limit:
        raise BountyError(errors.PROBE_TOO_LARGE.format(size=len(content), limit=limit), field="probe")
    try:
        check_probe_file(name=name, content=content)
        check_probe_syntax(name=name, content=content)
    except ProbeFileError as exc:
        raise BountyError(str(exc), field="probe", code=errors.PROBE_REJECTED_CODE) from None


def check_challenge_transition(*, from_state: str, to_state: str) -> None:
    """draft → open → closed → judging → finished (closed may reopen); anything else is refused."""
    allowed = states.CHALLENGE_TRANSITIONS.get(from_state, set())
    if from_state != to_state and to_state not in allowed:
        raise BountyError(errors.CHALLENGE_TRANSITION_REFUSED.format(
            from_state=from_state, to_state=to_state, allowed=", ".join(sorted(allowed)) or "nothing"), field="state")


def check_challenge_model(*, challenge: Challenge, model_name: str, variants: list, state: str) -> dict:
    """The target fields to freeze when `challenge` opens now: model_version and model_sha256 ({} otherwise).

    An opened challenge's target model cannot change (its name, version and weights hash are frozen);
    every name, variants included, must be one this installation runs (a built-in or a registered model).
    """
    opened = challenge.pk is not None and challenge.state != states.DRAFT
    if opened and model_name != challenge.model_name:
        raise BountyError(errors.CHALLENGE_MODEL_FROZEN.format(name=challenge.model_name,
                                                                version=challenge.model_version), field="model_name")
    try:
        facts = [model_facts(name) for name in [model_name, *variants]]
    except ValueError as exc:
        raise BountyError(errors.CHALLENGE_MODEL_UNKNOWN.format(error=exc), field="model_name") from None
    if state != states.OPEN or opened:
        return {}
    return {"model_version": facts[0]["version"], "model_sha256": facts[0]["weights_sha256"] or ""}


def quota_usage(*, challenge: Challenge, participant, phase: Phase | None = None) -> dict:
    """The person's use of the quota in force (the open phase's when it sets limits, else the challenge's).

    A quota belongs to a person: a submission as a team counts against the member who sent it,
    so joining or creating teams never adds submissions. Failed runs count; platform faults
    and cancellations do not, nor do the demo's seeded submissions. A phase that sets either
    limit counts only its own submissions; a limit it leaves empty is the challenge's.
    """
    phase = phase if phase is not None else phase_open(challenge=challenge)
    counted = Submission.objects.filter(challenge=challenge, participant=participant, is_demo=False).exclude(
        state__in=(states.PLATFORM_ERROR, states.CANCELLED)
    )
    daily_limit, total_limit = challenge.daily_limit, challenge.total_limit
    if phase is not None and phase.own_quota:
        counted = counted.filter(phase=phase)
        daily_limit = challenge.daily_limit if phase.daily_limit is None else phase.daily_limit
        total_limit = challenge.total_limit if phase.total_limit is None else phase.total_limit
    since = timezone.now() - timedelta(days=1)
    totals = counted.aggregate(total=Count("pk"), today=Count("pk", filter=Q(created_at__gte=since)))
    left = max(0, min(total_limit - totals["total"], daily_limit - totals["today"]))
    return {"total": totals["total"], "total_limit": total_limit,
            "today": totals["today"], "daily_limit": daily_limit, "left": left}


def check_submission_allowed(*, challenge: Challenge, participant, team=None, phase: Phase | None = None) -> dict:
    """The challenge is open and the participant is within their own quota; returns the usage.

    A refusal carries the usage in `extra["quota"]`, so the form and the API can say what is left.
    """
    if challenge.state != states.OPEN:
        raise BountyError(errors.CHALLENGE_NOT_OPEN.format(state=challenge.get_state_display().lower()))
    if challenge.closes_at and timezone.now() >= challenge.closes_at:
        raise BountyError(errors.DEADLINE_PASSED.format(deadline=challenge.closes_at.strftime("%Y-%m-%d %H:%M UTC")))
    if team is not None and not team.members.filter(pk=participant.pk).exists():
        raise BountyError(errors.NOT_A_TEAM_MEMBER.format(team=team.name), field="team")
    usage = quota_usage(challenge=challenge, participant=participant, phase=phase)
    if usage["total"] >= usage["total_limit"]:
        raise BountyError(errors.TOTAL_LIMIT_REACHED.format(limit=usage["total_limit"]), extra={"quota": usage})
    if usage["today"] >= usage["daily_limit"]:
        raise BountyError(errors.DAILY_LIMIT_REACHED.format(limit=usage["daily_limit"]), extra={"quota": usage})
    return usage


def submission_create(
    *,
    challenge: Challenge,
    participant,
    title: str,
    probe_name: str,
    probe_content: bytes,
    writeup: str = "",
    self_assessment: dict | None = None,
    team=None,
    is_demo: bool = False,
) -> Submission:
    """Validate, store and queue a submission; the run starts once the row is committed."""
    check_submission_allowed(challenge=challenge, participant=participant, team=team)
    check_probe_upload(name=probe_name, content=probe_content)
    digest = "sha256:" + hashlib.sha256(probe_content).hexdigest()
    with transaction.atomic():
        # One person's submissions queue on their row, so parallel requests cannot all pass the quota.
        get_user_model().objects.select_for_update().filter(pk=participant.pk).first()
        phase = phase_open(challenge=challenge)
        check_submission_allowed(challenge=challenge, participant=participant, team=team, phase=phase)
        submission = Submission(
            phase=phase,
            challenge=challenge,
            participant=participant,
            team=team,
            title=title.strip() or "Untitled finding",
            probe_name=probe_name.rsplit("/", 1)[-1][:200],
            probe_sha256=digest,
            writeup=writeup,
            self_assessment=self_assessment or {},
            harm_type=(self_assessment or {}).get("harm_type", ""),
            is_demo=is_demo,
        )
        submission.probe.save(submission.probe_name, ContentFile(probe_content), save=False)
        submission.save()
        SubmissionEvent.objects.create(
            submission=submission, actor=participant, from_state="", to_state=states.SUBMITTED, reason="submitted"
        )
        submission_queue(submission=submission, reason="waiting for a sandbox worker")
    return submission


def submission_queue(*, submission: Submission, reason: str, actor=None):
    """queued: create the next probe run and send its task once the transaction commits."""
    # The pipeline owns probe runs; the domain names its one way of queuing one by a dotted path
    # (settings.RUN_ENQUEUE), as it names the run's task, so it never imports the pipeline.
    with transaction.atomic():
        run = import_string(settings.RUN_ENQUEUE)(submission=submission)
        submission_transition(
            submission_id=submission.pk,
            from_states=(states.SUBMITTED,),
            to_state=states.QUEUED,
            reason=reason,
            actor=actor,
        )
    return run


def submission_transition(
    *,
    submission_id: int,
    from_states,
    to_state: str,
    reason: str = "",
    actor=None,
    **fields,
) -> bool:
    """Compare-and-set the state; audit it; tell the participant and the webhooks. False if the row had moved on."""
    from_states = tuple(from_states)
    for source in from_states:
        if source != to_state and to_state not in states.SUBMISSION_TRANSITIONS.get(source, set()):
            raise ValueError(errors.TRANSITION_REFUSED.format(from_state=source, to_state=to_state))
    with transaction.atomic():
        current = (
            Submission.objects.select_for_update().filter(pk=submission_id).values_list("state", flat=True).first()
        )
        if current is None or current not in from_states:
            return False
        if to_state == states.ACCEPTED and "embargo_until" not in fields:
            # The disclosure clock starts at acceptance, whoever accepts.
            fields["embargo_until"] = embargo_end(submission_id=submission_id, accepted_at=timezone.now())
        Submission.objects.filter(pk=submission_id).update(
            state=to_state, state_reason=reason, state_changed_at=timezone.now(), **fields
        )
        SubmissionEvent.objects.create(
            submission_id=submission_id, actor=actor, from_state=current, to_state=to_state, reason=reason
        )
        if current != to_state:
            at = timezone.now()
            transaction.on_commit(lambda: notify_state_change(submission_id=submission_id, from_state=current,
                                                              to_state=to_state))
            transaction.on_commit(lambda: webhooks_schedule(submission_id=submission_id, from_state=current,
                                                            to_state=to_state, at=at))
    return True


def submission_audit(*, submission: Submission, actor, reason: str) -> SubmissionEvent:
    """The audit row of a decision that moves no state (an assignment, a conflict, a response, a re-run)."""
    return SubmissionEvent.objects.create(submission=submission, actor=actor, from_state=submission.state,
                                          to_state=submission.state, reason=reason)


def submission_cancel(*, submission: Submission, actor) -> None:
    """Cancel before measurement; a running sandbox sees it within a second and is killed."""
    moved = submission_transition(
        submission_id=submission.pk,
        from_states=states.CANCELLABLE_STATES,
        to_state=states.CANCELLED,
        reason="cancelled by the participant",
        actor=actor,
    )
    if not moved:
        submission.refresh_from_db()
        raise BountyError(errors.CANNOT_CANCEL.format(state=submission.get_state_display().lower()))


# --- publishing and coordinated disclosure -------------------------------------------------------------

FINDING_PREFIX = "CB"


def embargo_end(*, submission_id: int, accepted_at):
    """When an accepted finding publishes by itself (None: its challenge has no embargo)."""
    embargo = Challenge.objects.filter(submissions__pk=submission_id).values_list("embargo", flat=True).first()
    return accepted_at + embargo if embargo else None


def embargo_active(*, submission: Submission, now=None) -> bool:
    """True while the organizer may still answer before the finding goes public."""
    if submission.vendor_response:
        return False
    if submission.state == states.IN_REVIEW:
        return bool(submission.challenge.embargo)
    return submission.embargo_until is not None and submission.embargo_until > (now or timezone.now())


def check_publish_allowed(*, submission: Submission) -> None:
    """A judge may publish unless the challenge's embargo still holds the finding."""
    if not embargo_active(submission=submission):
        return
    if submission.embargo_until is None:
        raise BountyError(errors.EMBARGOED_ON_ACCEPT)
    raise BountyError(errors.EMBARGOED.format(until=timezone.localtime(submission.embargo_until).strftime("%Y-%m-%d %H:%M %Z")))


def _finding_identifier_assign(*, submission_id: int) -> str:
    """The next CB-<year>-<serial>; the serial row's lock orders concurrent publishers."""
    year = timezone.now().year
    FindingSerial.objects.get_or_create(year=year)
    FindingSerial.objects.filter(year=year).update(last=F("last") + 1)
    number = FindingSerial.objects.values_list("last", flat=True).get(year=year)
    identifier = f"{FINDING_PREFIX}-{year}-{number:04d}"
    Submission.objects.filter(pk=submission_id, finding_identifier__isnull=True).update(finding_identifier=identifier)
    return identifier


@transaction.atomic
def interval_fields(submission: Submission) -> dict:
    """The leaderboard's interval of a finding, from its measurement of record (grading.intervals)."""
    measurement = grading_selectors.measurement_of_record(submission=submission)
    interval = headline_interval(grading_selectors.document_of(measurement))
    if interval is None:
        return {"interval_test": "", "interval_estimate": None, "interval_low": None, "interval_high": None}
    return {"interval_test": interval.test[:300], "interval_estimate": interval.estimate,
            "interval_low": interval.low, "interval_high": interval.high}


def submission_publish_transition(*, submission: Submission, actor, reason: str) -> None:
    """accepted → published, the move every publish path makes: final score, identifier, audit row.

    A judge comes through review.services.submission_publish; the embargo's end and the
    organizer's response come here with actor=None.
    """
    final = submission.final_score
    if final is None:
        score = grading_services.score_final_create(submission=submission)
        final = score.value if score else None
    if final is None:  # the leaderboard ranks scores: a published result always has one
        raise BountyError(errors.PUBLISH_NEEDS_SCORE)
    moved = submission_transition(
        submission_id=submission.pk, from_states=(states.ACCEPTED,), to_state=states.PUBLISHED,
        reason=reason, actor=actor, published_at=timezone.now(), final_score=final, **interval_fields(submission),
    )
    if not moved:
        submission.refresh_from_db()
        raise BountyError(errors.TRANSITION_REFUSED.format(from_state=submission.state, to_state=states.PUBLISHED))
    _finding_identifier_assign(submission_id=submission.pk)
    submission.refresh_from_db()


def findings_release_due(*, now=None) -> list[int]:
    """Publish every accepted finding whose embargo ended or whose organizer answered; their ids."""
    now = now or timezone.now()
    due = (Submission.objects.select_related("challenge")
           .filter(state=states.ACCEPTED, embargo_until__isnull=False)
           .filter(Q(embargo_until__lte=now) | ~Q(vendor_response="")).order_by("embargo_until", "pk"))
    released = []
    for submission in due:
        reason = ("published: the organizer responded during the embargo" if submission.vendor_response
                  else "published: the disclosure embargo ended")
        try:
            submission_publish_transition(submission=submission, actor=None, reason=reason)
        except BountyError as exc:  # e.g. no score yet: it stays accepted and is retried next time
            logger.warning("embargoed submission %s not published: %s", submission.pk, exc.message)
            continue
        released.append(submission.pk)
    return released


def check_vendor_response(*, response: str, version: str = "", note: str = "") -> None:
    choices = [value for value, _label in VENDOR_RESPONSES]
    if response not in choices:
        raise BountyError(errors.UNKNOWN_RESPONSE.format(response=response, choices=", ".join(choices)), field="vendor_response")
    if response == RESPONSE_FIXED and not version.strip():
        raise BountyError(errors.RESPONSE_NEEDS_VERSION, field="vendor_response_version")
    if response == RESPONSE_WONT_FIX and not note.strip():
        raise BountyError(errors.RESPONSE_NEEDS_NOTE, field="vendor_response_note")


def submission_respond(*, submission: Submission, response: str, version: str = "", note: str = "", actor=None) -> None:
    """Record the organizer's response; an accepted finding under embargo then publishes at once."""
    check_vendor_response(response=response, version=version, note=note)
    with transaction.atomic():
        Submission.objects.filter(pk=submission.pk).update(
            vendor_response=response, vendor_response_version=version.strip()[:100], vendor_response_note=note.strip(),
            vendor_responded_at=timezone.now())
        submission.refresh_from_db()
        submission_audit(submission=submission, actor=actor,
                         reason=" ".join(filter(None, ["the organizer responded:", response,
                                                       submission.vendor_response_version])))
    if submission.state == states.ACCEPTED and submission.embargo_until is not None:
        submission_publish_transition(submission=submission, actor=actor,
                                      reason="published: the organizer responded during the embargo")
