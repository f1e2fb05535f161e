"""Reviews, assignments and comments are review's now, image sets the pipeline's: state only, no table changes."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('grading', '0006_model_report'),
        ('pipeline', '0001_runs_moved_here'),
        ('review', '0001_reviews_moved_here'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name='measurement',
                name='image_set',
                field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='measurements', to='pipeline.imageset'),
            ),
            migrations.DeleteModel(
                name='Review',
            ),
            migrations.DeleteModel(
                name='ReviewAssignment',
            ),
            migrations.DeleteModel(
                name='SubmissionComment',
            ),
        ]),
    ]
