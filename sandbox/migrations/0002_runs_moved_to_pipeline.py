"""ProbeRun and ImageSet are the pipeline's now: state only, their tables stay."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('grading', '0007_tables_moved'),
        ('pipeline', '0001_runs_moved_here'),
        ('sandbox', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveField(
                model_name='proberun',
                name='submission',
            ),
            migrations.DeleteModel(
                name='ImageSet',
            ),
            migrations.DeleteModel(
                name='ProbeRun',
            ),
        ]),
    ]
