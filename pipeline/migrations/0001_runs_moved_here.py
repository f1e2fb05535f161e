"""ProbeRun and ImageSet move here from sandbox: state only, no row moves (their tables keep their names)."""
import django.db.models.deletion
import uuid
from django.db import migrations, models


def _move_content_types(apps, old_label, new_label, models):
    """Permissions and admin history follow the tables: their content types change app, not id."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in models:
        if not ContentType.objects.filter(app_label=new_label, model=model).exists():
            ContentType.objects.filter(app_label=old_label, model=model).update(app_label=new_label)


def forwards(apps, schema_editor):
    _move_content_types(apps, "sandbox", "pipeline", ("proberun", "imageset"))


def backwards(apps, schema_editor):
    _move_content_types(apps, "pipeline", "sandbox", ("proberun", "imageset"))


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('bounty', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('sandbox', '0001_initial'),
    ]

    operations = [
        # The tables stay where they are (db_table): only Django's idea of their app changes.
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='ProbeRun',
                fields=[
                    ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                    ('backend', models.CharField(max_length=20)),
                    ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('ok', 'OK'), ('error', 'Error'), ('timeout', 'Timeout'), ('limit_exceeded', 'Limit exceeded'), ('rejected', 'Rejected'), ('platform_error', 'Platform error'), ('cancelled', 'Cancelled')], db_index=True, default='queued', max_length=20)),
                    ('attempt', models.PositiveIntegerField(default=1)),
                    ('exit_code', models.IntegerField(blank=True, null=True)),
                    ('wall_s', models.FloatField(blank=True, null=True)),
                    ('stdout_tail', models.TextField(blank=True)),
                    ('stderr_tail', models.TextField(blank=True)),
                    ('error', models.TextField(blank=True)),
                    ('details', models.JSONField(blank=True, default=dict)),
                    ('worker', models.CharField(blank=True, max_length=200)),
                    ('queued_at', models.DateTimeField(auto_now_add=True)),
                    ('started_at', models.DateTimeField(blank=True, null=True)),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('submission', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='runs', to='bounty.submission')),
                ],
                options={
                    'db_table': 'sandbox_proberun',
                    'ordering': ['-queued_at'],
                },
            ),
            migrations.CreateModel(
                name='ImageSet',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('path', models.CharField(help_text='directory relative to VAR_DIR', max_length=500)),
                    ('n_images', models.PositiveIntegerField()),
                    ('title', models.CharField(blank=True, max_length=300)),
                    ('attribute', models.CharField(blank=True, max_length=100)),
                    ('groups', models.JSONField(default=list)),
                    ('manifest_sha256', models.CharField(max_length=80)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('run', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='image_set', to='pipeline.proberun')),
                ],
                options={
                    'db_table': 'sandbox_imageset',
                },
            ),
        ]),
        migrations.RunPython(forwards, backwards),
    ]
