"""The leaderboard's SQL: a pinned number of queries whatever the size, sort, page and filter, and an index per order.

Speed itself is timed from outside in bench/bench_leaderboard.py (100 to 100,000 rows).
"""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bounty import leaderboard, states
from bounty.models import Phase, Submission, Team
from tests.factories import challenge_create, user_create

pytestmark = pytest.mark.django_db

# challenge_get, the count, the page's rows (ids from the sort's index, then those rows), the ranks.
LEADERBOARD_QUERIES = 4
HARMS = ["under-representation", "stereotyping"]


def fill(challenge, n: int, *, phase=None) -> None:
    """`n` published results from 4 participants, every third in a team, scores with ties."""
    people = [user_create(f"{challenge.slug}-p{i}") for i in range(4)]
    team = Team.objects.create(name=f"{challenge.slug} team")
    start = timezone.now() - timedelta(days=30)
    Submission.objects.bulk_create([
        Submission(challenge=challenge, participant=people[i % 4], team=team if i % 3 == 0 else None, phase=phase,
                   title=f"Finding {i}", probe_sha256=f"sha256:{i:064x}", probe=f"probes/x/{i}.py",
                   harm_type=HARMS[i % 2], state=states.PUBLISHED, final_score=float(i % 13),
                   provisional_score=None if i % 5 == 0 else float(i % 7), published_at=start + timedelta(minutes=i))
        for i in range(n)
    ])


def views(n: int) -> list[dict]:
    last = str(-(-n // leaderboard.LEADERBOARD_PAGE_SIZE))
    return [{"sort": sort, "page": page} for sort in leaderboard.LEADERBOARD_SORTS for page in ("1", "2", last)] + [
        {"harm": HARMS[1]}, {"harm": HARMS[1], "page": "2"}, {"harm": HARMS[0], "sort": "title", "page": last},
        {"q": "Finding 1"}, {"q": "team"}, {"page": "9999"}, {"sort": "nonsense"},
    ]


def queries_of(client, url: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
        assert response.status_code == 200, response.content[:300]
    return len(queries)


def test_every_view_of_the_page_and_the_api_takes_the_same_four_queries_at_60_and_600_rows(client):
    boards = {60: challenge_create(slug="small", show_provisional=True),
              600: challenge_create(slug="large", show_provisional=True)}
    counts = {}
    for n, challenge in boards.items():
        fill(challenge, n)
        for name in ("leaderboard", "api-leaderboard"):
            url = reverse(name, args=[challenge.slug])
            for params in views(n):
                counts[(n, name, tuple(sorted(params.items())))] = queries_of(client, url, params)
    assert set(counts.values()) == {LEADERBOARD_QUERIES}, {k: v for k, v in counts.items() if v != LEADERBOARD_QUERIES}


def test_a_phase_board_takes_the_same_four_queries(client, challenge):
    now = timezone.now()
    phase = Phase.objects.create(challenge=challenge, name="One", starts_at=now - timedelta(days=40),
                                 ends_at=now + timedelta(days=1))
    fill(challenge, 120, phase=phase)
    url = reverse("leaderboard", args=[challenge.slug])
    # Phases add the phase list to the board's queries, the same for every page.
    counts = {page: queries_of(client, url, {"phase": phase.pk, "page": page}) for page in ("1", "2", "3")}
    assert set(counts.values()) == {LEADERBOARD_QUERIES + 1}, counts


def test_a_deep_page_shows_the_same_rows_and_ranks_as_reading_the_whole_board(challenge):
    fill(challenge, 230)
    for sort in leaderboard.LEADERBOARD_SORTS:
        whole = leaderboard.leaderboard_queryset(challenge=challenge, query=leaderboard.LeaderboardQuery(sort=sort))
        ranks = {row["submission"].pk: row["rank"] for row in leaderboard.leaderboard(challenge=challenge)}
        page = leaderboard.leaderboard_page(challenge=challenge, query=leaderboard.LeaderboardQuery(sort=sort, page=4))
        expected = [row.pk for row in whole][150:200]
        assert [row.pk for row in page.object_list] == expected, sort
        assert [row.rank for row in page.object_list] == [ranks[pk] for pk in expected], sort


# Each order the page offers walks its own partial index, without sorting the rows.
SORT_INDEXES = {"rank": "sub_board_score_idx", "-rank": "sub_board_score_idx", "date": "sub_board_date_idx",
                "-date": "sub_board_date_idx", "title": "sub_board_title_idx", "-title": "sub_board_title_idx",
                "provisional": "sub_board_provisional_idx"}


def plan_of(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # Tiny tables are scanned and sorted; ask whether an ordered index walk fits.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_every_sort_and_the_harm_filter_read_their_page_from_an_index_without_a_sort(challenge):
    assert set(SORT_INDEXES) == set(leaderboard.LEADERBOARD_SORTS)
    fill(challenge, 120)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bounty_submission")  # the planner's statistics of the rows just made
    cases = [(leaderboard.LeaderboardQuery(sort=sort, page=2), index) for sort, index in SORT_INDEXES.items()]
    cases.append((leaderboard.LeaderboardQuery(harm=HARMS[1], page=2), "sub_board_harm_idx"))
    for query, index in cases:
        rows = leaderboard.leaderboard_queryset(challenge=challenge, query=query)
        plan = plan_of(rows.values("pk")[50:100])
        assert f"using {index}" in plan and "Sort" not in plan, (query, plan)


def test_every_page_of_a_search_and_of_the_board_s_far_half_shows_the_rows_and_ranks_of_the_whole_board(challenge):
    fill(challenge, 230)
    ranks = {row["submission"].pk: row["rank"] for row in leaderboard.leaderboard(challenge=challenge)}
    for q in ("", "Finding 1", "team", f"{challenge.slug}-p2"):  # title, team and participant matches
        for sort in leaderboard.LEADERBOARD_SORTS:
            whole = [row.pk for row in leaderboard.leaderboard_queryset(
                challenge=challenge, query=leaderboard.LeaderboardQuery(sort=sort, q=q))]
            assert whole, q
            for number in range(1, -(-len(whole) // 50) + 1):  # first half forwards, second half backwards
                page = leaderboard.leaderboard_page(challenge=challenge,
                                                  query=leaderboard.LeaderboardQuery(sort=sort, q=q, page=number))
                expected = whole[(number - 1) * 50:number * 50]
                assert [row.pk for row in page.object_list] == expected, (q, sort, number)
                assert [row.rank for row in page.object_list] == [ranks[pk] for pk in expected], (q, sort, number)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigram index is made on PostgreSQL only")
def test_the_trigram_index_holds_what_a_search_by_title_compares(challenge):
    """sub_board_title_trgm_idx (PostgreSQL only) holds the trigrams of UPPER(title), which icontains compares."""
    rows = leaderboard.leaderboard_queryset(challenge=challenge, query=leaderboard.LeaderboardQuery(q="Finding 11"))
    assert '."title"::text) LIKE UPPER(' in str(rows.query)  # UPPER(<the title>) LIKE UPPER('%q%')
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'sub_board_title_trgm_idx'")
        (definition,), = cursor.fetchall()
    assert "USING gin (upper((title)::text) gin_trgm_ops) WHERE ((state)::text = 'published'::text)" in definition
