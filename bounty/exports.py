"""Downloads of what a page shows, as CSV: the leaderboard (`?format=csv` on its page)."""
from __future__ import annotations

import csv
import io

from bounty import leaderboard

# Every published result of the board in one file, with the page's filters and order; a bound so a
# request's cost stays bounded however large the board grows.
LEADERBOARD_CSV_MAX_ROWS = 10_000

# The header says what each column is; a spreadsheet shows it as the first row.
LEADERBOARD_COLUMNS = [
    ("rank", "rank (by final score; equal scores share a rank; empty for a baseline)"),
    ("submitter", "participant or team"),
    ("is_team", "team (yes or no)"),
    ("title", "finding title"),
    ("harm_type", "harm type"),
    ("score", "final score (rubric points)"),
    ("provisional_score", "provisional score (rubric points, before review)"),
    ("published_at", "published (UTC, ISO 8601)"),
    ("baseline", "baseline (a reference probe: shown, not ranked; yes or no)"),
    ("interval_test", "headline test (its primary, else its strongest Holm-significant test)"),
    ("interval_estimate", "disparity from parity of the headline test (proportion points)"),
    ("interval_low", "95% interval of the disparity, low"),
    ("interval_high", "95% interval of the disparity, high"),
    ("tie_group", "tie group (the rank of its first row; rows whose intervals overlap their neighbour's)"),
    ("finding_url", "finding page"),
]

# A cell a spreadsheet would read as a formula is written as text (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def leaderboard_csv(*, board: leaderboard.Board, show_provisional: bool, finding_url) -> str:
    """The board's rows as CSV text; `finding_url(pk)` makes each finding's absolute address."""
    columns = [(key, label) for key, label in LEADERBOARD_COLUMNS
               if key != "provisional_score" or show_provisional]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([label for _, label in columns])
    for row in board.page.object_list:
        values = {
            "rank": row.rank, "submitter": leaderboard.submitter_label(row),
            "is_team": "yes" if row.team_id else "no", "title": row.title, "harm_type": row.harm_type,
            "score": row.final_score, "provisional_score": row.provisional_score,
            "published_at": row.published_at.isoformat() if row.published_at else "",
            "finding_url": finding_url(row.pk), "baseline": "yes" if row.is_demo else "no",
            "interval_test": row.interval_test, "interval_estimate": row.interval_estimate,
            "interval_low": row.interval_low, "interval_high": row.interval_high, "tie_group": row.tie_group,
        }
        writer.writerow([_cell(values[key]) for key, _ in columns])
    return out.getvalue()
