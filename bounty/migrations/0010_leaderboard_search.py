"""The leaderboard's search by title: a trigram index (pg_trgm), on PostgreSQL only.

`title__icontains` is `UPPER(title) LIKE UPPER('%…%')` on PostgreSQL, so the index holds the trigrams of
the upper-cased title of published results. It lives in this migration only, not in the model's Meta:
an operator class on an expression needs django.contrib.postgres installed to be written by Django,
and SQLite, the local default, has no trigram index at all.
"""

from django.db import migrations

INDEX = "sub_board_title_trgm_idx"
CREATE = (f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "bounty_submission" '
          "USING gin ((UPPER(\"title\"::text)) gin_trgm_ops) WHERE \"state\" = 'published'")
DROP = f'DROP INDEX IF EXISTS "{INDEX}"'


def on_postgres(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('bounty', '0009_leaderboard_indexes'),
    ]

    operations = [
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it. Going back
        # drops the index and leaves the extension, which other schemas may use.
        migrations.RunPython(on_postgres("CREATE EXTENSION IF NOT EXISTS pg_trgm"), migrations.RunPython.noop,
                             elidable=False),
        migrations.RunPython(on_postgres(CREATE), on_postgres(DROP), elidable=False),
    ]
