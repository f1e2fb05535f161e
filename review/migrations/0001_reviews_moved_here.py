"""Review, ReviewAssignment and SubmissionComment move here from grading: state only, no row moves."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _move_content_types(apps, old_label, new_label, models):
    """Permissions and admin history follow the tables: their content types change app, not id."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in models:
        if not ContentType.objects.filter(app_label=new_label, model=model).exists():
            ContentType.objects.filter(app_label=old_label, model=model).update(app_label=new_label)


def forwards(apps, schema_editor):
    _move_content_types(apps, "grading", "review", ("review", "reviewassignment", "submissioncomment"))


def backwards(apps, schema_editor):
    _move_content_types(apps, "review", "grading", ("review", "reviewassignment", "submissioncomment"))


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('bounty', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('grading', '0005_registered_model'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay where they are (db_table): only Django's idea of their app changes.
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='SubmissionComment',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('body', models.TextField()),
                    ('to_participant', models.BooleanField(default=False)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('author', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('submission', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='comments', to='bounty.submission')),
                ],
                options={
                    'db_table': 'grading_submissioncomment',
                    'ordering': ['created_at', 'pk'],
                },
            ),
            migrations.CreateModel(
                name='Review',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('harm_type', models.CharField(blank=True, max_length=40)),
                    ('ratings', models.JSONField(blank=True, default=dict, help_text='factor -> level')),
                    ('justifications', models.JSONField(blank=True, default=dict, help_text='factor -> sentence')),
                    ('comment', models.TextField(blank=True)),
                    ('conflict_of_interest', models.BooleanField(default=False)),
                    ('score', models.FloatField(blank=True, null=True)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('updated_at', models.DateTimeField(auto_now=True)),
                    ('judge', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='reviews', to=settings.AUTH_USER_MODEL)),
                    ('submission', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reviews', to='bounty.submission')),
                ],
                options={
                    'db_table': 'grading_review',
                    'constraints': [models.UniqueConstraint(fields=('submission', 'judge'), name='one_review_per_judge')],
                },
            ),
            migrations.CreateModel(
                name='ReviewAssignment',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('assigned_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('judge', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='review_assignments', to=settings.AUTH_USER_MODEL)),
                    ('submission', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='bounty.submission')),
                ],
                options={
                    'db_table': 'grading_reviewassignment',
                    'ordering': ['created_at'],
                    'constraints': [models.UniqueConstraint(fields=('submission', 'judge'), name='one_assignment_per_judge')],
                },
            ),
        ]),
        migrations.RunPython(forwards, backwards),
    ]
