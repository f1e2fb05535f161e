"""The public leaderboard: published results only, competition ranking, filters, constant query count."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bounty import leaderboard, states
from bounty.models import Submission, Team
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


def published_rows(challenge, scores, *, harm="under-representation", team=None, provisional=None):
    """Published rows in bulk (the shape the worker and judges leave behind), oldest first."""
    users = {}
    for i in range(min(len(scores), 5)):
        name = f"p{i}"
        users[name] = get_user_model().objects.filter(username=name).first() or user_create(name)
    start = timezone.now() - timedelta(days=30)
    rows = [
        Submission(challenge=challenge, participant=list(users.values())[i % len(users)], team=team,
                   title=f"Finding {i}", probe_sha256=f"sha256:{i:064x}", probe=f"probes/x/{i}.py",
                   harm_type=harm, state=states.PUBLISHED, final_score=score, provisional_score=provisional,
                   published_at=start + timedelta(minutes=i))
        for i, score in enumerate(scores)
    ]
    return Submission.objects.bulk_create(rows)


def board_rows(client, challenge, **params):
    response = client.get(reverse("leaderboard", args=[challenge.slug]), params)
    assert response.status_code == 200
    return response.context["rows"], response.content.decode()


def test_ties_share_a_rank_and_the_next_rank_skips(client, challenge):
    published_rows(challenge, [10.0, 30.0, 30.0, 20.0])
    rows, _ = board_rows(client, challenge)
    assert [(r.rank, r.final_score) for r in rows] == [(1, 30.0), (1, 30.0), (3, 20.0), (4, 10.0)]
    # Equal scores: the earlier publication is listed first.
    assert [r.title for r in rows[:2]] == ["Finding 1", "Finding 2"]


def test_only_published_results_appear(client, challenge, alice):
    submission_create(challenge=challenge, participant=alice, title="Still queued")
    published_rows(challenge, [5.0])
    rows, page = board_rows(client, challenge)
    assert [r.title for r in rows] == ["Finding 0"] and "Still queued" not in page


def test_filtering_by_harm_keeps_the_overall_rank(client, challenge):
    published_rows(challenge, [50.0, 40.0])
    published_rows(challenge, [45.0], harm="stereotyping")
    rows, _ = board_rows(client, challenge, harm="stereotyping")
    assert [(r.rank, r.harm_type) for r in rows] == [(2, "stereotyping")]


def test_searching_finds_a_team_by_name(client, challenge):
    team = Team.objects.create(name="Pixel Auditors")
    published_rows(challenge, [10.0], team=team)
    published_rows(challenge, [20.0])
    rows, page = board_rows(client, challenge, q="pixel")
    assert [r.team_id for r in rows] == [team.pk] and "Pixel Auditors" in page


def test_sorting_by_date_lists_the_newest_first(client, challenge):
    published_rows(challenge, [10.0, 30.0, 20.0])
    rows, _ = board_rows(client, challenge, sort="-date")
    assert [r.title for r in rows] == ["Finding 2", "Finding 1", "Finding 0"]
    assert [r.rank for r in rows] == [2, 1, 3]


def test_an_unknown_sort_falls_back_to_rank(client, challenge):
    published_rows(challenge, [1.0, 2.0])
    rows, _ = board_rows(client, challenge, sort="participant__password")
    assert [r.final_score for r in rows] == [2.0, 1.0]


def test_the_provisional_column_shows_only_when_the_organizer_switches_it_on(client, challenge):
    published_rows(challenge, [10.0], provisional=7.25)
    _, page = board_rows(client, challenge)
    assert "Provisional" not in page and "7.25" not in page
    challenge.show_provisional = True
    challenge.save()
    _, page = board_rows(client, challenge)
    assert "<th class=\"num\">Provisional</th>" in page and "7.25" in page


def test_the_leaderboard_is_paginated(client, challenge):
    published_rows(challenge, [float(i) for i in range(leaderboard.LEADERBOARD_PAGE_SIZE + 3)])
    rows, page = board_rows(client, challenge, page=2)
    assert len(rows) == 3 and rows[0].rank == leaderboard.LEADERBOARD_PAGE_SIZE + 1
    assert "page 2 of 2" in page


def leaderboard_queries(client, challenge) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("leaderboard", args=[challenge.slug]))
        assert response.status_code == 200
    return len(queries)


def test_the_query_count_is_the_same_for_10_and_1000_rows(client):
    small, large = challenge_create(slug="small"), challenge_create(slug="large")
    published_rows(small, [float(i % 7) for i in range(10)])
    team = Team.objects.create(name="Big team")
    published_rows(large, [float(i % 97) for i in range(1000)], team=team)
    n_small, n_large = leaderboard_queries(client, small), leaderboard_queries(client, large)
    assert n_small == n_large
    api = reverse("api-leaderboard", args=["large"])
    with CaptureQueriesContext(connection) as api_large:
        assert client.get(api).json()["count"] == 1000
    with CaptureQueriesContext(connection) as api_small:
        assert client.get(reverse("api-leaderboard", args=["small"])).json()["count"] == 10
    assert len(api_large) == len(api_small)


def test_the_leaderboard_queries_can_use_the_composite_index(challenge):
    published_rows(challenge, [1.0, 2.0])
    page_sql, page_params = leaderboard.leaderboard_queryset(challenge=challenge)[:50].query.sql_with_params()
    rank_sql, rank_params = leaderboard.leaderboard_ranks_sql(challenge=challenge, wanted=[1.0])
    # The page is read in index order (no sort of the rows); the ranks from an index, never a
    # table scan (which index the planner picks for two rows is its business; bench/ times 10,000).
    for sql, params, index in [(page_sql, page_params, "sub_board_score_idx"),
                               (rank_sql, rank_params, "")]:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables are scanned; ask whether the index fits
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Seq Scan" not in plan, plan
        if index:
            assert f"using {index}" in plan and "Sort" not in plan, plan


def test_the_api_leaderboard_gives_rank_submitter_and_finding_url(client, challenge):
    published_rows(challenge, [3.0, 3.0])
    body = client.get(reverse("api-leaderboard", args=[challenge.slug])).json()
    assert [row["rank"] for row in body["results"]] == [1, 1]
    first = body["results"][0]
    assert first["submitter"] == "p0" and first["provisional_score"] is None
    assert first["finding_url"].endswith(reverse("finding-detail", args=[first["submission"]]))


def test_a_finding_without_a_score_cannot_be_published(challenge):
    from bounty.errors import PUBLISH_NEEDS_SCORE, BountyError
    from review.services import submission_publish

    judge = user_create("jo")
    challenge.judges.add(judge)
    submission = published_rows(challenge, [None])[0]
    Submission.objects.filter(pk=submission.pk).update(state=states.ACCEPTED, published_at=None)
    submission.refresh_from_db()
    with pytest.raises(BountyError, match=PUBLISH_NEEDS_SCORE.split(":")[0]):
        submission_publish(submission=submission, judge=judge)
    submission.refresh_from_db()
    assert submission.state == states.ACCEPTED


def leaderboard_csv(client, challenge, **params):
    import csv
    import io

    response = client.get(reverse("leaderboard", args=[challenge.slug]), {**params, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_leaderboard_downloads_as_csv_with_every_row_and_a_header_that_names_each_column(client, challenge):
    published_rows(challenge, [float(i) for i in range(leaderboard.LEADERBOARD_PAGE_SIZE + 3)])
    header, *rows = leaderboard_csv(client, challenge, page=2)
    assert header[0].startswith("rank") and "final score (rubric points)" in header
    assert len(rows) == leaderboard.LEADERBOARD_PAGE_SIZE + 3  # every page's rows, not the page asked for
    page_rows, page = board_rows(client, challenge)
    assert [row[0] for row in rows[:len(page_rows)]] == [str(r.rank) for r in page_rows]
    assert [row[3] for row in rows[:len(page_rows)]] == [r.title for r in page_rows]
    assert rows[0][-1].endswith(reverse("finding-detail", args=[page_rows[0].pk]))
    assert 'id="leaderboard-csv"' in page
    # The provisional column only where the page shows it.
    assert not any("provisional" in label for label in header)


def test_the_csv_keeps_the_pages_filters_and_writes_formulas_as_text(client, challenge):
    published_rows(challenge, [50.0, 40.0])
    (row,) = published_rows(challenge, [45.0], harm="stereotyping")
    Submission.objects.filter(pk=row.pk).update(title="=HYPERLINK(\"http://evil\")")
    header, *rows = leaderboard_csv(client, challenge, harm="stereotyping")
    assert [(r[0], r[4]) for r in rows] == [("2", "stereotyping")]
    assert rows[0][3] == "'=HYPERLINK(\"http://evil\")"


def with_intervals(rows, intervals):
    for row, interval in zip(rows, intervals):
        low, high = interval if interval else (None, None)
        Submission.objects.filter(pk=row.pk).update(
            interval_test="preference:a>b" if interval else "", interval_low=low, interval_high=high,
            interval_estimate=None if interval is None else (low + high) / 2)


def test_rows_carry_their_interval_and_overlapping_neighbours_share_a_tie_group(client, challenge):
    rows = published_rows(challenge, [90.0, 80.0, 70.0, 60.0, 50.0])
    # 1 and 2 overlap; 3 stands alone; 4 and 5 overlap; a chain follows neighbours in rank order
    with_intervals(rows, [(0.20, 0.30), (0.25, 0.35), (0.50, 0.60), (0.05, 0.12), (0.10, 0.15)])
    page_rows, page = board_rows(client, challenge)
    assert [(r.rank, r.tie_group) for r in page_rows] == [(1, 1), (2, 1), (3, None), (4, 4), (5, 4)]
    assert "25.0 [20.0, 30.0]" in page and "ranks 1–2" in page and "ranks 4–5" in page
    assert 'id="leaderboard-intervals"' in page and "cannot tell their disparities apart" in page
    results = client.get(reverse("api-leaderboard", args=[challenge.slug])).json()["results"]
    assert results[0]["interval"] == {"test": "preference:a>b", "estimate": 0.25, "low": 0.2, "high": 0.3}
    assert [r["tie_group"] for r in results] == [1, 1, None, 4, 4]
    header, *csv_rows = leaderboard_csv(client, challenge)
    column = {key: header.index(label) for key, label in
              [("low", "95% interval of the disparity, low"), ("tie", next(h for h in header if h.startswith("tie")))]}
    assert [(r[column["low"]], r[column["tie"]]) for r in csv_rows] == [
        ("0.2", "1"), ("0.25", "1"), ("0.5", ""), ("0.05", "4"), ("0.1", "4")]


def test_a_row_without_an_interval_is_in_no_tie_group(client, challenge):
    rows = published_rows(challenge, [90.0, 80.0, 70.0])
    with_intervals(rows, [(0.2, 0.3), None, (0.2, 0.3)])
    page_rows, _page = board_rows(client, challenge)
    assert [r.tie_group for r in page_rows] == [None, None, None]


def test_baselines_are_shown_apart_and_never_ranked(client, challenge):
    rows = published_rows(challenge, [90.0, 80.0, 70.0])
    Submission.objects.filter(pk=rows[0].pk).update(is_demo=True)
    page_rows, page = board_rows(client, challenge)
    assert [(r.title, r.rank) for r in page_rows] == [("Finding 0", None), ("Finding 1", 1), ("Finding 2", 2)]
    assert 'class="baseline"' in page and ">baseline</span>" in page and "never eligible for prizes" in page
    results = client.get(reverse("api-leaderboard", args=[challenge.slug])).json()["results"]
    assert [(r["rank"], r["is_baseline"]) for r in results] == [(None, True), (1, False), (2, False)]
    header, *csv_rows = leaderboard_csv(client, challenge)
    baseline = header.index(next(h for h in header if h.startswith("baseline")))
    assert [(r[0], r[baseline]) for r in csv_rows] == [("", "yes"), ("1", "no"), ("2", "no")]


def test_a_published_finding_carries_its_headline_interval():
    from grading.intervals import headline_interval

    document = {"primary": None, "tests": [
        {"id": "preference:a>b", "kind": "preference", "variant": None, "estimate": 0.7, "ci": [0.6, 0.8],
         "p_holm": 0.001, "effect_size": 0.41},
        {"id": "group_rate:a>b@1.0", "kind": "group_rate", "variant": None, "estimate": -0.05, "ci": [-0.2, 0.1],
         "p_holm": 0.4, "effect_size": -0.1},
        {"id": "group_rate:a>b@1.0#m@32px", "kind": "group_rate", "variant": "m@32px", "estimate": -0.5,
         "ci": [-0.6, -0.4], "p_holm": 0.0001, "effect_size": -1.2},
    ]}
    interval = headline_interval(document)  # the strongest significant base test, as a distance from parity
    assert interval.test == "preference:a>b"
    assert (interval.estimate, interval.low, interval.high) == pytest.approx((0.2, 0.1, 0.3))
    primary = headline_interval({**document, "primary": "group_rate:a>b@1.0"})  # the registered primary wins
    assert primary.test == "group_rate:a>b@1.0"
    assert (primary.estimate, primary.low, primary.high) == pytest.approx((0.05, 0.0, 0.2))  # holds parity
    assert headline_interval({"tests": []}) is None and headline_interval(None) is None


def test_a_baseline_between_ranked_rows_takes_no_rank_from_those_below(challenge):
    rows = published_rows(challenge, [90.0, 85.0, 80.0, 80.0, 70.0])
    Submission.objects.filter(pk__in=[rows[1].pk, rows[4].pk]).update(is_demo=True)
    ranked = [(row["submission"].final_score, row["rank"]) for row in leaderboard.leaderboard(challenge=challenge)]
    assert ranked == [(90.0, 1), (85.0, None), (80.0, 2), (80.0, 2), (70.0, None)]
