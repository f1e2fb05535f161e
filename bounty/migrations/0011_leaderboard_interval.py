"""Each published finding's headline interval for the leaderboard (grading.intervals), filled in
for the findings published before it: from each one's measurement of record."""
import json

from django.db import migrations, models

from grading.intervals import headline_interval


def fill_intervals(apps, schema_editor):
    Submission = apps.get_model("bounty", "Submission")
    Measurement = apps.get_model("grading", "Measurement")
    for submission in Submission.objects.filter(state="published").only("pk").iterator():
        record = (Measurement.objects.filter(submission_id=submission.pk, rerun_of__isnull=True, status="done")
                  .exclude(document_json="").order_by("-created_at").values_list("document_json", flat=True).first())
        interval = headline_interval(json.loads(record)) if record else None
        if interval is not None:
            Submission.objects.filter(pk=submission.pk).update(
                interval_test=interval.test[:300], interval_estimate=interval.estimate, interval_low=interval.low,
                interval_high=interval.high)


class Migration(migrations.Migration):

    dependencies = [
        ('bounty', '0010_leaderboard_search'),
        ('grading', '0007_tables_moved'),
    ]

    operations = [
        migrations.AddField(
            model_name='submission',
            name='interval_estimate',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='submission',
            name='interval_high',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='submission',
            name='interval_low',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='submission',
            name='interval_test',
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddIndex(
            model_name='submission',
            index=models.Index(condition=models.Q(('is_demo', True), ('state', 'published')),
                               fields=['challenge', '-final_score'], name='sub_board_baseline_idx'),
        ),
        migrations.RunPython(fill_intervals, migrations.RunPython.noop),
    ]
