"""The tables that moved app (runs and image sets to pipeline, reviews to review) keep every row.

The moves are state-only migrations: the database is migrated back to before them, rows are
written through that old state, and after migrating forward the new models read the same rows.
"""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from grading.models import Measurement
from pipeline.models import ImageSet, ProbeRun
from review.models import Review, ReviewAssignment, SubmissionComment
from tests.factories import challenge_create, submission_create, user_create

BEFORE_THE_MOVE = [("pipeline", None), ("review", None), ("grading", "0006_model_report"),
                   ("sandbox", "0001_initial")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([target for target in targets if target[1]]).apps


def _leaves():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_are_read_after_it():
    judge = user_create("jules")
    submission = submission_create(challenge=challenge_create(slug="moves"), participant=user_create("pat"))
    old = _migrate(BEFORE_THE_MOVE)
    try:
        assert "proberun" in old.all_models["sandbox"] and "proberun" not in old.all_models["pipeline"]
        run = old.get_model("sandbox", "ProbeRun").objects.create(submission_id=submission.pk, backend="bwrap",
                                                                   status="ok", details={"from": "before"})
        image_set = old.get_model("sandbox", "ImageSet").objects.create(
            run_id=run.pk, path="runs/x", n_images=3, groups=["a", "b"], manifest_sha256="sha")
        measurement = old.get_model("grading", "Measurement").objects.create(
            submission_id=submission.pk, image_set_id=image_set.pk, model_name="spectral-residual")
        review = old.get_model("grading", "Review").objects.create(submission_id=submission.pk, judge_id=judge.pk,
                                                                   ratings={"harm": "high"}, score=7.5)
        old.get_model("grading", "ReviewAssignment").objects.create(submission_id=submission.pk, judge_id=judge.pk)
        old.get_model("grading", "SubmissionComment").objects.create(submission_id=submission.pk,
                                                                     author_id=judge.pk, body="looks real")
    finally:
        _migrate(_leaves())

    assert ProbeRun.objects.get(pk=run.pk).details == {"from": "before"}
    assert ProbeRun.objects.filter(submission=submission).count() == 2  # the one queued at submission too
    assert ImageSet.objects.get(pk=image_set.pk).run_id == run.pk
    assert Measurement.objects.get(pk=measurement.pk).image_set.run.pk == run.pk
    assert Review.objects.get(pk=review.pk).ratings == {"harm": "high"}
    assert ReviewAssignment.objects.get(submission=submission).judge == judge
    assert SubmissionComment.objects.get(submission=submission).body == "looks real"
    assert ImageSet._meta.db_table == "sandbox_imageset" and Review._meta.db_table == "grading_review"
