"""Reads of the bounty app: what participants, the public and the API may see."""
from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from bounty import phases as bounty_phases
from bounty import states
from bounty.errors import NotFound
from bounty.models import MODEL_PUBLIC, Challenge, Phase, Submission, Team
from bounty.permissions import HIDDEN_NAME, identity_hidden, is_own_submission, user_can_judge
from bounty.queue import measurement_eta_s, queue_eta_s, queue_position
from bounty.visibility import finding_released, finding_visible
from grading import selectors as grading_selectors
from grading.rubric import Rubric, RubricError, default_rubric, rubric_for_challenge, rubric_summary
from probekit import get_model
from probekit.models.registered import registered_file
from sandbox.limits import Limits
from sandbox.runner import TargetModelView

TERMINAL_STATES = (states.FAILED, states.PLATFORM_ERROR, states.CANCELLED, states.PUBLISHED,
                   states.DUPLICATE, states.NOT_REPRODUCIBLE, states.OUT_OF_SCOPE)


def challenge_get(*, slug: str) -> Challenge:
    # has_phases rides on the same query, so a challenge without phases costs its board nothing more.
    challenge = (Challenge.objects.filter(slug=slug).exclude(state=states.DRAFT)
                 .annotate(has_phases=Exists(Phase.objects.filter(challenge=OuterRef("pk")))).first())
    if challenge is None:
        raise NotFound("No such challenge.")
    return challenge


def challenge_list() -> QuerySet[Challenge]:
    return Challenge.objects.exclude(state=states.DRAFT).annotate(
        n_published=Count("submissions", filter=Q(submissions__state=states.PUBLISHED)
                          & bounty_phases.public_board_q(prefix="submissions__"))
    ).order_by("-created_at")


def challenge_card(*, challenge: Challenge) -> dict:
    """What the challenge page shows beside the rules: model card, rubric, limits, example probe."""
    try:
        card = get_model(challenge.model_name).card.to_json()
    except ValueError:  # a model this installation no longer has: show the frozen name only
        card = None
    example = settings.BASE_DIR / "examples" / "probes" / "contrast_composites.py"
    return {
        "model_card": card,
        "rubric_card": rubric_summary(rubric=rubric_for_challenge(challenge)),
        "limits": challenge_limits(challenge=challenge),
        "example_probe": example.read_text(encoding="utf-8") if example.is_file() else "",
        "example_probe_name": example.name,
        "deadline_passed": bool(challenge.closes_at and challenge.closes_at <= timezone.now()),
    }


def harm_choices(*, challenge: Challenge | None = None) -> list[tuple[str, str]]:
    """The harm types of the challenge's rubric (the default rubric without a challenge)."""
    rubric = rubric_for_challenge(challenge) if challenge else default_rubric()
    return [(h["id"], h["label"]) for h in rubric.data["harms"]]


def submission_get_for_user(*, submission_id: int, user) -> Submission:
    """The participant's own submission, or any for a judge/organizer of its challenge; else 404."""
    submission = (
        Submission.objects.select_related("challenge", "participant", "team").filter(pk=submission_id).first()
    )
    if submission is None or not user.is_authenticated:
        raise NotFound("No such submission.")
    if is_own_submission(user=user, submission=submission) or user_can_judge(user=user, challenge=submission.challenge):
        return submission
    raise NotFound("No such submission.")


def submission_get_visible(*, submission_id: int, user) -> Submission:
    """A released finding for anyone (bounty.visibility), otherwise the rules of submission_get_for_user."""
    published = (
        Submission.objects.select_related("challenge", "participant", "team", "phase")
        .filter(pk=submission_id, state=states.PUBLISHED).first()
    )
    if published is not None and finding_released(submission=published):
        return published
    return submission_get_for_user(submission_id=submission_id, user=user)


def finding_get(*, submission_id: int, user=None) -> Submission:
    """A finding `user` may see (bounty.visibility: released, or theirs to judge or author); else 404."""
    submission = (
        Submission.objects.select_related("challenge", "participant", "team", "phase")
        .filter(pk=submission_id, state=states.PUBLISHED).first()
    )
    if submission is None or not finding_visible(submission=submission, user=user):
        raise NotFound("No such finding.")
    return submission


# --- blind review (the rule: bounty.permissions.identity_hidden) ----------------------------------


def rubric_of(challenge: Challenge) -> Rubric:
    try:
        return rubric_for_challenge(challenge)
    except RubricError:
        return default_rubric()


def participant_label(*, submission: Submission, rubric: Rubric) -> str:
    if identity_hidden(submission=submission, rubric=rubric):
        return HIDDEN_NAME
    name = submission.participant.get_username()
    return f"{name} ({submission.team.name})" if submission.team_id else name


def submission_list_for_participant(*, user, challenge: Challenge | None = None) -> QuerySet[Submission]:
    qs = Submission.objects.filter(participant=user).select_related("challenge", "team")
    return qs.filter(challenge=challenge) if challenge else qs


def team_list_for_user(*, user) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return user.teams.prefetch_related("members").order_by("name")


def team_get_for_member(*, team_id: int, user) -> Team:
    team = team_list_for_user(user=user).filter(pk=team_id).first()
    if team is None:
        raise NotFound("No such team.")
    return team


# --- one submission's live state ----------------------------------------------------------------


def latest_run(*, submission: Submission):
    """The submission's own latest run; a judge's re-run is shown on the judge page only."""
    return submission.runs.exclude(details__has_key="rerun_of").order_by("-queued_at").first()


def latest_measurement(*, submission: Submission):
    """The submission's measurement of record (the same one judges rate against)."""
    return grading_selectors.measurement_of_record(submission=submission)


measurement_document = grading_selectors.document_of


def artifact_names(*, measurement) -> list[str]:
    """Artifact names without `.png`, as the participant pages' URLs spell them."""
    return [name.removesuffix(".png") for name in grading_selectors.artifact_names(measurement=measurement)]


def artifact_open(*, submission: Submission, name: str):
    """The open PNG of the submission's measurement of record called `name`; 404 for anything else."""
    measurement = latest_measurement(submission=submission)
    handle = grading_selectors.artifact_open(measurement=measurement, filename=f"{name}.png") if measurement else None
    if handle is None:
        raise NotFound("No such image.")
    return handle


def submission_status(*, submission: Submission) -> dict:
    """The live state of a submission as one JSON-able record: pages poll it, the API returns it."""
    run = latest_run(submission=submission)
    measurement = latest_measurement(submission=submission)
    now = timezone.now()
    status = {
        "id": submission.pk,
        "challenge": submission.challenge.slug,
        "title": submission.title,
        "state": submission.state,
        "state_label": submission.get_state_display(),
        "reason": submission.state_reason,
        "state_changed_at": submission.state_changed_at.isoformat(),
        "active": submission.state in states.ACTIVE_STATES,
        "finished": submission.state in TERMINAL_STATES,
        "queue_position": None,
        "eta_s": None,
        "elapsed_s": None,
        "progress": None,
        "progress_unit": None,
        "measure_eta_s": None,
        "run": None,
        "provisional_score": submission.provisional_score,
        "final_score": submission.final_score if submission.state == states.PUBLISHED else None,
        "published_at": submission.published_at.isoformat() if submission.published_at else None,
        **grading_selectors.findings_checks(submission=submission),
    }
    if submission.state == states.QUEUED:
        status["queue_position"] = queue_position(submission=submission)
        status["eta_s"] = queue_eta_s(position=status["queue_position"], model=submission.challenge.model_name)
    if run is not None:
        status["run"] = {
            "id": str(run.pk), "status": run.status, "attempt": run.attempt, "backend": run.backend,
            "exit_code": run.exit_code, "wall_s": run.wall_s, "error": run.error,
            "stdout_tail": run.stdout_tail, "stderr_tail": run.stderr_tail,
        }
        if submission.state == states.RUNNING and run.started_at:
            status["elapsed_s"] = round((now - run.started_at).total_seconds(), 1)
    if measurement is not None and submission.state == states.MEASURING and measurement.progress_total:
        # The total is the worker's count of model runs, fixed when it starts; it is "images" only
        # when that is one run per image (composites, variants and other models count apart).
        status["progress"] = {"done": measurement.progress_done, "total": measurement.progress_total}
        same = measurement.image_set is not None and measurement.progress_total == measurement.image_set.n_images
        status["progress_unit"] = "images" if same else "observations"
        status["measure_eta_s"] = measurement_eta_s(measurement=measurement, model=measurement.model_name)
    return status


def thread_for_participant(*, submission: Submission) -> QuerySet:
    """The messages of the needs_info thread the participant sees (never judges-only notes)."""
    return submission.comments.filter(to_participant=True).select_related("author")


def submission_page(*, submission: Submission) -> dict:
    """Everything the submission and finding pages show."""
    measurement = latest_measurement(submission=submission)
    status = submission_status(submission=submission)
    return {
        "submission": submission,
        "status": status,
        "run": latest_run(submission=submission),
        "measurement": measurement,
        "document": measurement_document(measurement),
        "artifacts": artifact_names(measurement=measurement),
        "events": submission.events.all(),
        "thread": thread_for_participant(submission=submission),
        "image_set": measurement.image_set if measurement else None,
        "replication": grading_selectors.replication_view(data=status["replication"], robustness=status["robustness"],
                                                          document=measurement_document(measurement)),
    }


def user_is_organizer(*, user) -> bool:
    return user.is_authenticated and (user.is_staff or user.organized_challenges.exists())


# --- what the pipeline needs of a challenge ---------------------------------------------------------


def challenge_limits(*, challenge: Challenge) -> Limits:
    """The sandbox and image-set caps of a challenge: its overrides on the defaults, for every stage."""
    return Limits.from_dict(challenge.limits)


def challenge_target_model(*, challenge: Challenge) -> TargetModelView | None:
    """What a probe of this challenge sees of its registered target model (None for a built-in one)."""
    path = registered_file(challenge.model_name.partition("@")[0])
    if path is None:
        return None
    return TargetModelView(name=path.parent.name, directory=path.parent,
                           public=challenge.model_visibility == MODEL_PUBLIC)


def challenge_measurement_settings(*, challenge: Challenge) -> dict:
    """The keyword arguments of grading.measurement.measure_image_set that come from the challenge.

    The pipeline, the `measure` command and the finding page's re-measure line all use these, so a
    published document can be recomputed byte for byte.
    """
    limits = challenge_limits(challenge=challenge)
    return dict(model=challenge.model_name, variants=list(challenge.model_variants),
                ratios=list(challenge.aspect_ratios) or None, compose_options=challenge.compose_options,
                generalization=challenge.measure_generalization,
                max_images=limits.max_images, max_pixels=limits.max_pixels)
