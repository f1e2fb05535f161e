"""Reads of the bounty app: what participants, the public and the API may see."""
from __future__ import annotations

import contextlib
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

import blobs
from bounty import phases as bounty_phases
from bounty import states
from bounty.errors import NotFound
from bounty.models import MODEL_PUBLIC, Challenge, Phase, Submission, Team
from bounty.queue import queue_eta_s, queue_position
from grading import selectors as grading_selectors
from grading.rubric import Rubric, RubricError, default_rubric, rubric_for_challenge, rubric_summary
from probekit import get_model
from probekit.bundle import image_set_files, write_bundle
from probekit.models.registered import registered_file
from sandbox.limits import Limits
from sandbox.runner import TargetModelView

LEADERBOARD_PAGE_SIZE = 50
# GET ?sort= values → ORDER BY; every order ends in the same tie-breaks so pages never overlap.
LEADERBOARD_SORTS = {
    "rank": (F("final_score").desc(), "published_at", "id"),
    "-rank": (F("final_score").asc(), F("published_at").desc(), F("id").desc()),
    "date": ("published_at", "id"),
    "-date": (F("published_at").desc(), F("id").desc()),
    "title": ("title", "id"),
    "-title": (F("title").desc(), F("id").desc()),
    "provisional": (F("provisional_score").desc(nulls_last=True), "published_at", "id"),
}
# Blind review lifts once a decision is made; needs_info is a question, not a decision.
DECIDED_STATES = (states.ACCEPTED, states.DUPLICATE, states.NOT_REPRODUCIBLE, states.OUT_OF_SCOPE, states.PUBLISHED)
HIDDEN_NAME = "Participant (hidden until decided)"
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
    if submission.participant_id == user.pk or user_can_judge(user=user, challenge=submission.challenge):
        return submission
    raise NotFound("No such submission.")


def submission_get_visible(*, submission_id: int, user) -> Submission:
    """A published finding for anyone, otherwise the rules of submission_get_for_user."""
    published = (
        Submission.objects.select_related("challenge", "participant", "team")
        .filter(pk=submission_id, state=states.PUBLISHED).first()
    )
    return published or submission_get_for_user(submission_id=submission_id, user=user)


def finding_get(*, submission_id: int) -> Submission:
    submission = (
        Submission.objects.select_related("challenge", "participant", "team")
        .filter(pk=submission_id, state=states.PUBLISHED).first()
    )
    if submission is None:
        raise NotFound("No such finding.")
    return submission


# --- blind review: one rule for the judge console and every page a judge can open ------------------


def rubric_of(challenge: Challenge) -> Rubric:
    try:
        return rubric_for_challenge(challenge)
    except RubricError:
        return default_rubric()


def identity_hidden(*, submission: Submission, rubric: Rubric) -> bool:
    return rubric.blind and submission.state not in DECIDED_STATES


def participant_label(*, submission: Submission, rubric: Rubric) -> str:
    if identity_hidden(submission=submission, rubric=rubric):
        return HIDDEN_NAME
    name = submission.participant.get_username()
    return f"{name} ({submission.team.name})" if submission.team_id else name


def user_can_judge(*, user, challenge: Challenge) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return challenge.judges.filter(pk=user.pk).exists() or challenge.organizers.filter(pk=user.pk).exists()


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


# --- the leaderboard --------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderboardQuery:
    """The GET parameters of a leaderboard page, already checked."""

    sort: str = "rank"
    harm: str = ""
    q: str = ""
    page: int = 1

    @classmethod
    def from_params(cls, params) -> "LeaderboardQuery":
        sort = params.get("sort", "rank")
        try:
            page = max(1, int(params.get("page", 1)))
        except (TypeError, ValueError):
            page = 1
        return cls(sort=sort if sort in LEADERBOARD_SORTS else "rank", harm=params.get("harm", "")[:40].strip(),
                   q=params.get("q", "")[:100].strip(), page=page)


# What a leaderboard row shows (the page, the API, the own-results table): nothing else is read.
LEADERBOARD_FIELDS = ("id", "challenge_id", "participant_id", "team_id", "title", "harm_type", "final_score",
                      "provisional_score", "published_at", "participant__username", "team__name")


# The columns any order of LEADERBOARD_SORTS reads.
LEADERBOARD_SORT_KEYS = ("id", "final_score", "published_at", "title", "provisional_score")


def _board(*, challenge: Challenge, query: LeaderboardQuery, phase: Phase | None) -> QuerySet[Submission]:
    board = Submission.objects.filter(challenge=challenge, state=states.PUBLISHED)
    if phase is not None:
        board = board.filter(phase=phase)
    if query.harm:
        board = board.filter(harm_type=query.harm)
    return board


def _search_matches(*, board: QuerySet[Submission], q: str, columns=("pk",)) -> QuerySet:
    """The board's results matching `q` by title (sub_board_title_trgm_idx), participant or team: each part
    found through its own index, then united, so nothing reads the whole board."""
    people = get_user_model().objects.filter(username__iexact=q).values("pk")
    teams = Team.objects.filter(name__icontains=q).values("pk")
    parts = [board.filter(title__icontains=q), board.filter(participant__in=people), board.filter(team__in=teams)]
    first, *others = (part.order_by().values(*columns) for part in parts)
    return first.union(*others)


def leaderboard_queryset(*, challenge: Challenge, query: LeaderboardQuery | None = None,
                         phase: Phase | None = None) -> QuerySet[Submission]:
    """Published results (of `phase` when given), filtered and sorted by the query (ranks: leaderboard_ranks)."""
    query = query or LeaderboardQuery()
    rows = _board(challenge=challenge, query=query, phase=phase)
    if query.q:
        rows = Submission.objects.filter(pk__in=_search_matches(board=rows, q=query.q))
    return rows.select_related("participant", "team").only(*LEADERBOARD_FIELDS) \
        .order_by(*LEADERBOARD_SORTS[query.sort])


def _page_ids(*, challenge: Challenge, query: LeaderboardQuery, phase: Phase | None, rows: QuerySet[Submission],
              start: int, stop: int, backwards: bool):
    """The ids of positions start..stop-1 of the board in the query's order (from its far end when
    `backwards`): a walk of the sort's index alone or, for a search, of the matches alone, sorted by
    the keys they carry (joined back to the table, the planner would read the whole board)."""
    if not query.q:
        return (rows.reverse() if backwards else rows).values("pk")[start:stop]
    matches = _search_matches(board=_board(challenge=challenge, query=query, phase=phase), q=query.q,
                              columns=LEADERBOARD_SORT_KEYS).order_by(*LEADERBOARD_SORTS[query.sort])
    sql, params = (matches.reverse() if backwards else matches)[start:stop].query.sql_with_params()
    return RawSQL(f"SELECT id FROM ({sql}) page", params)


# Competition rank of each score among the board's published results: 1 + how many score higher
# (published results always have a score). Only the scores from the page's lowest up are counted —
# every higher score is among them — in one streaming pass: an index-only range scan of
# sub_board_score_idx (a phase: sub_phase_board_idx) in score order, grouped as it goes and summed by
# the window, no hash and no sort (the ordered inner query keeps the planner off a table scan, which
# it would otherwise pick when the range covers most of the board); only the page's scores come back.
_RANKS_SQL = """
SELECT final_score, higher + 1 FROM (
    SELECT final_score,
           COALESCE(SUM(COUNT(*)) OVER (ORDER BY final_score DESC
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS higher
    FROM (SELECT final_score FROM {table}
          WHERE challenge_id = %s{phase} AND state = %s AND final_score >= %s ORDER BY final_score DESC) board
    GROUP BY final_score ORDER BY final_score DESC
) ranked
WHERE final_score IN ({wanted})
"""


def leaderboard_ranks_sql(*, challenge: Challenge, wanted: list[float], phase: Phase | None = None):
    """The ranks query and its parameters for the (distinct, non-empty) `wanted` scores."""
    sql = _RANKS_SQL.format(table=connection.ops.quote_name(Submission._meta.db_table),
                            phase="" if phase is None else " AND phase_id = %s",
                            wanted=", ".join(["%s"] * len(wanted)))  # at most one page of scores
    return sql, [challenge.pk, *([] if phase is None else [phase.pk]), states.PUBLISHED, min(wanted), *wanted]


def leaderboard_ranks(*, challenge: Challenge, scores, phase: Phase | None = None) -> dict[float | None, int]:
    """Map each of `scores` (None allowed) to its rank among the board's results: ties share a rank (1, 1, 3)."""
    wanted = sorted({score for score in scores if score is not None})
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(*leaderboard_ranks_sql(challenge=challenge, wanted=wanted, phase=phase))
        return {score: int(rank) for score, rank in cursor.fetchall()}


def _with_ranks(*, challenge: Challenge, rows, phase: Phase | None = None) -> list[Submission]:
    rows = list(rows)
    ranks = leaderboard_ranks(challenge=challenge, scores=[row.final_score for row in rows], phase=phase)
    for row in rows:
        row.rank = ranks.get(row.final_score)
    return rows


def leaderboard_page(*, challenge: Challenge, query: LeaderboardQuery | None = None,
                     per_page: int = LEADERBOARD_PAGE_SIZE, phase: Phase | None = None):
    """One page of the leaderboard in three queries (count, rows, ranks), whatever its size and depth.

    The page's ids are found by walking the sort's index alone (OFFSET over index entries, not rows),
    from whichever end of the board is nearer; only those rows are then read, in the same query.
    """
    query = query or LeaderboardQuery()
    rows = leaderboard_queryset(challenge=challenge, query=query, phase=phase)
    page = Paginator(rows, per_page).get_page(query.page)
    offset = (page.number - 1) * per_page
    count = page.paginator.count
    # The board's second half is walked from its far end (the reverse order is the same index read
    # backwards), so no page walks more than half the board.
    backwards = offset > count // 2
    start, stop = (max(0, count - offset - per_page), count - offset) if backwards else (offset, offset + per_page)
    ids = _page_ids(challenge=challenge, query=query, phase=phase, rows=rows, start=start, stop=stop,
                    backwards=backwards)
    page_rows = Submission.objects.filter(pk__in=ids).select_related("participant", "team") \
        .only(*LEADERBOARD_FIELDS).order_by(*LEADERBOARD_SORTS[query.sort])
    page.object_list = _with_ranks(challenge=challenge, rows=page_rows, phase=phase)
    return page


def leaderboard(*, challenge: Challenge, phase: Phase | None = None) -> list[dict]:
    """Every published result (of `phase` when given) ranked by final score; ties share a rank."""
    rows = _with_ranks(challenge=challenge, rows=leaderboard_queryset(challenge=challenge, phase=phase), phase=phase)
    return [{"rank": row.rank, "submission": row} for row in rows]


@dataclass(frozen=True)
class Board:
    """What a leaderboard page, its API and its downloads may show one viewer.

    `page` is None when the board is hidden from the viewer: then nothing of its rows, not even
    their count, is computed; `own` are the viewer's own results in the phase, when the
    challenge lets participants see their own scores.
    """

    phase: Phase | None
    phases: list
    page: object | None
    hidden_message: str = ""
    own: list = ()


def leaderboard_board(*, challenge: Challenge, user, params, per_page: int = LEADERBOARD_PAGE_SIZE) -> Board:
    """The board a viewer asked for (`?phase=`, filters, page), or why it is hidden from them."""
    phases = bounty_phases.phase_list(challenge=challenge) if getattr(challenge, "has_phases", True) else []
    phase = bounty_phases.board_phase(challenge=challenge, phases=phases, phase_id=params.get("phase"))
    if bounty_phases.board_visible(phase=phase, user=user):
        page = leaderboard_page(challenge=challenge, query=LeaderboardQuery.from_params(params), per_page=per_page,
                                phase=phase)
        return Board(phase=phase, phases=phases, page=page)
    own = []
    if user.is_authenticated and challenge.participants_see_own_score:
        own = list(leaderboard_queryset(challenge=challenge, phase=phase).filter(participant=user))
    return Board(phase=phase, phases=phases, page=None, hidden_message=bounty_phases.board_hidden_message(phase=phase),
                 own=own)


def submitter_label(submission: Submission) -> str:
    return submission.team.name if submission.team_id else submission.participant.get_username()


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
        "run": None,
        "provisional_score": submission.provisional_score,
        "final_score": submission.final_score if submission.state == states.PUBLISHED else None,
        "published_at": submission.published_at.isoformat() if submission.published_at else None,
    }
    if submission.state == states.QUEUED:
        status["queue_position"] = queue_position(submission=submission)
        status["eta_s"] = queue_eta_s(position=status["queue_position"])
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
    return status


def thread_for_participant(*, submission: Submission) -> QuerySet:
    """The messages of the needs_info thread the participant sees (never judges-only notes)."""
    return submission.comments.filter(to_participant=True).select_related("author")


def submission_page(*, submission: Submission) -> dict:
    """Everything the submission and finding pages show."""
    measurement = latest_measurement(submission=submission)
    return {
        "submission": submission,
        "status": submission_status(submission=submission),
        "run": latest_run(submission=submission),
        "measurement": measurement,
        "document": measurement_document(measurement),
        "artifacts": artifact_names(measurement=measurement),
        "events": submission.events.all(),
        "thread": thread_for_participant(submission=submission),
        "image_set": measurement.image_set if measurement else None,
    }


# --- downloads of a published finding -----------------------------------------------------------


@contextlib.contextmanager
def image_set_local(*, submission: Submission) -> Iterator[Path]:
    """The finding's image set as a local directory for the block (fetched from the object storage)."""
    measurement = latest_measurement(submission=submission)
    if measurement is None or measurement.image_set is None:
        raise NotFound("This finding has no image set.")
    try:
        manifest = blobs.key_of(measurement.image_set.path, "manifest.json")
    except ValueError:  # not a key of ours
        manifest = None
    if manifest is None or not blobs.exists(manifest):
        raise NotFound("This finding's image set is no longer stored.")
    with blobs.fetched_tree(measurement.image_set.path, label="download") as directory:
        yield directory


def image_set_zip(*, submission: Submission) -> bytes:
    """The image set as a zip: manifest.json and its images, regular files only, no links followed."""
    buffer = io.BytesIO()
    with image_set_local(submission=submission) as directory, \
            zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in image_set_files(directory):
            archive.write(path, arcname=path.relative_to(directory).as_posix())
    return buffer.getvalue()


def finding_record(*, submission: Submission, url: str = "") -> dict:
    """How the platform names a published finding in its bundle and its AVID report."""
    return {"id": submission.pk, "identifier": submission.finding_identifier, "title": submission.title,
            "challenge": submission.challenge.slug, "url": url,
            "published_at": submission.published_at.isoformat() if submission.published_at else None}


def finding_bundle_write(*, submission: Submission, target, url: str = "") -> dict:
    """Write the reproducibility bundle of a published finding to `target` (docs/findings-reproducibility.md).

    The stored document byte for byte, the image set it measured, the probe as submitted, and the
    challenge's measurement settings and seed, so `probekit verify` can recompute the document.
    """
    measurement = latest_measurement(submission=submission)
    if measurement_document(measurement) is None:
        raise NotFound("This finding has no metrics document.")
    try:
        with submission.probe.open("rb") as handle:
            probe_bytes = handle.read()
    except (*blobs.FAULTS, ValueError):  # the probe file is no longer stored: the bundle says so (probe: null)
        probe_bytes = None
    with image_set_local(submission=submission) as directory:
        return write_bundle(target, document_text=measurement.document_json, image_set_dir=directory,
                            settings=challenge_measurement_settings(challenge=submission.challenge),
                            seed=measurement.seed, probe_name=submission.probe_name, probe_bytes=probe_bytes,
                            finding=finding_record(submission=submission, url=url))


SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def download_name(submission: Submission, suffix: str) -> str:
    return f"finding-{submission.pk}-{SAFE_FILENAME.sub('-', submission.challenge.slug)}{suffix}"


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
