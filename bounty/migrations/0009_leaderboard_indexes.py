"""The leaderboard's indexes: partial (published results only), one per order the page offers."""

from django.conf import settings
from django.db import migrations, models


class AddIndexOnPostgres(migrations.AddIndex):
    """The index in every migration state, but created on PostgreSQL only: SQLite cannot index NULLS LAST."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    dependencies = [
        ('bounty', '0008_model_freeze'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='submission',
            name='sub_board_score_idx',
        ),
        migrations.RemoveIndex(
            model_name='submission',
            name='sub_board_date_idx',
        ),
        migrations.RemoveIndex(
            model_name='submission',
            name='sub_phase_board_idx',
        ),
        migrations.AddIndex(
            model_name='submission',
            index=models.Index(condition=models.Q(('state', 'published')), fields=['challenge', '-final_score', 'published_at', 'id'], name='sub_board_score_idx'),
        ),
        migrations.AddIndex(
            model_name='submission',
            index=models.Index(condition=models.Q(('state', 'published')), fields=['challenge', 'published_at', 'id'], name='sub_board_date_idx'),
        ),
        migrations.AddIndex(
            model_name='submission',
            index=models.Index(condition=models.Q(('state', 'published')), fields=['challenge', 'title', 'id'], name='sub_board_title_idx'),
        ),
        migrations.AddIndex(
            model_name='submission',
            index=models.Index(condition=models.Q(('state', 'published')), fields=['challenge', 'harm_type', '-final_score', 'published_at', 'id'], name='sub_board_harm_idx'),
        ),
        AddIndexOnPostgres(
            model_name='submission',
            index=models.Index(models.F('challenge'), models.OrderBy(models.F('provisional_score'), descending=True, nulls_last=True), models.F('published_at'), models.F('id'), condition=models.Q(('state', 'published')), name='sub_board_provisional_idx'),
        ),
        migrations.AddIndex(
            model_name='submission',
            index=models.Index(condition=models.Q(('state', 'published')), fields=['challenge', 'phase', '-final_score', 'published_at', 'id'], name='sub_phase_board_idx'),
        ),
    ]
