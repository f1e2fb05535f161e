"""The leaderboard's reads: a challenge's (or a phase's) published results, ranked, sorted,
searched and paged, with the raw-SQL ranks (docs/architecture.md, phases and leaderboard
visibility). Pages and the API build their board here (`leaderboard_board`)."""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import F, QuerySet
from django.db.models.expressions import RawSQL

from bounty import phases as bounty_phases
from bounty import states
from bounty.models import Challenge, Phase, Submission, Team
from grading import intervals

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
                      "provisional_score", "published_at", "participant__username", "team__name", "is_demo",
                      "interval_test", "interval_estimate", "interval_low", "interval_high")


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
# (published results always have a score), baselines (the platform's reference probes) not counted.
# Only the scores from the page's lowest up are counted — every higher score is among them — in one
# streaming pass: an index-only range scan of sub_board_score_idx (a phase: sub_phase_board_idx) in
# score order, grouped as it goes and summed by the window, no hash and no sort (the ordered inner
# query keeps the planner off a table scan, which it would otherwise pick when the range covers most
# of the board); only the page's scores come back. The few baselines above each score are then
# subtracted, counted through their own small partial index (sub_board_baseline_idx), so the scan
# of the board still reads the index alone.
_RANKS_SQL = """
SELECT final_score, higher + 1 - (
    SELECT COUNT(*) FROM {table} baseline
    WHERE baseline.challenge_id = %s AND baseline.state = %s AND baseline.is_demo
          AND baseline.final_score > ranked.final_score{baseline_phase}
) FROM (
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
                            baseline_phase="" if phase is None else " AND baseline.phase_id = %s",
                            wanted=", ".join(["%s"] * len(wanted)))  # at most one page of scores
    in_phase = [] if phase is None else [phase.pk]
    return sql, [challenge.pk, states.PUBLISHED, *in_phase, challenge.pk, *in_phase, states.PUBLISHED, min(wanted),
                 *wanted]


def leaderboard_ranks(*, challenge: Challenge, scores, phase: Phase | None = None) -> dict[float | None, int]:
    """Map each of `scores` (None allowed) to its rank among the board's results: ties share a rank (1, 1, 3)."""
    wanted = sorted({score for score in scores if score is not None})
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(*leaderboard_ranks_sql(challenge=challenge, wanted=wanted, phase=phase))
        return {score: int(rank) for score, rank in cursor.fetchall()}


def _with_ranks(*, challenge: Challenge, rows, phase: Phase | None = None) -> list[Submission]:
    """The rows with their rank (None for a baseline: shown, never ranked) and tie group."""
    rows = list(rows)
    ranks = leaderboard_ranks(challenge=challenge, scores=[row.final_score for row in rows if not row.is_demo],
                              phase=phase)
    for row in rows:
        row.rank = None if row.is_demo else ranks.get(row.final_score)
    _tie_groups(rows)
    return rows


INTERVAL_HELP = ("the finding's headline test (its registered primary, else its strongest Holm-significant test): "
                 "the disparity from parity and its 95% interval, in proportion points; null without one")
TIE_GROUP_HELP = ("the rank of the first row of this row's tie group (neighbours in rank order whose intervals "
                  "overlap); null outside a group")


def interval_dict(row: Submission) -> dict | None:
    if row_interval(row) is None:
        return None
    return {"test": row.interval_test, "estimate": row.interval_estimate, "low": row.interval_low,
            "high": row.interval_high}


def row_interval(row: Submission) -> tuple[float, float] | None:
    if row.interval_low is None or row.interval_high is None:
        return None
    return (row.interval_low, row.interval_high)


def _tie_groups(rows: list[Submission]) -> None:
    """Ranked rows next to each other in rank order whose intervals overlap form a tie group: each
    member's `tie_group` is the rank of its group's first row, `tie_ranks` the ranks it spans ("3–5");
    both None outside a group. Groups are found among the rows at hand (one page)."""
    ranked = sorted((row for row in rows if row.rank is not None),
                    key=lambda row: (row.rank, row.published_at is None, row.published_at, row.pk))
    groups, current = [], []
    for row in ranked:
        if current and not intervals.overlaps(row_interval(current[-1]), row_interval(row)):
            groups.append(current)
            current = []
        current.append(row)
    groups.append(current)
    for row in rows:
        row.tie_group, row.tie_ranks = None, None
    for group in groups:
        if len(group) > 1:
            first, last = group[0].rank, group[-1].rank
            for row in group:
                row.tie_group, row.tie_ranks = first, f"{first}–{last}" if last != first else str(first)


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
    # The replication's status rides along (its mark), in the same query.
    page_rows = Submission.objects.filter(pk__in=ids).select_related("participant", "team", "replication") \
        .only(*LEADERBOARD_FIELDS, "replication__status", "replication__robustness") \
        .order_by(*LEADERBOARD_SORTS[query.sort])
    page.object_list = _with_ranks(challenge=challenge, rows=page_rows, phase=phase)
    for row in page.object_list:  # the page's marks, from the replication loaded with the row
        row.replication_status, row.robust = replication_mark(row), robust_mark(row)
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


def replication_mark(row: Submission) -> str | None:
    """The row's replication status (loaded with the page's rows), None when it has none."""
    try:
        return row.replication.status
    except ObjectDoesNotExist:
        return None


def robust_mark(row: Submission) -> bool | None:
    """True when every significant test held under the four changes, False when one broke, else None."""
    try:
        robustness = row.replication.robustness or {}
    except ObjectDoesNotExist:
        return None
    if robustness.get("status") != "done" or not robustness.get("tests"):
        return None
    return all(test.get("verdict") == "robust" for test in robustness["tests"].values())
