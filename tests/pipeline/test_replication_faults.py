"""A confirmatory run's faults end its replication, never the submission's state; platform faults are
retried a bounded number of times; a decided submission stops the replication's pending work."""
from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.utils import timezone

from bounty import notifications, states, webhooks
from bounty import services as bounty_services
from bounty.models import Webhook
from grading.models import Replication
from pipeline import replication, runs
from pipeline.models import ProbeRun
from sandbox.runner import RunResult
from sandbox.status import RunStatus
from tests.factories import user_create
from tests.grading.test_judge_console import challenge_for_tests, measured_submission_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pending(settings):
    settings.REPLICATION = True
    submission = measured_submission_create(challenge=challenge_for_tests(slug="rep-faults"),
                                            participant=user_create("fay"))
    measurement = submission.measurements.get()
    with transaction.atomic():
        rep = replication.replication_begin(submission=submission, measurement=measurement,
                                            document=json.loads(measurement.document_json))
    assert rep.status == "pending" and rep.seed is not None
    return submission, rep


def _confirmatory_runs(rep):
    return ProbeRun.objects.filter(details__replication=rep.pk).order_by("queued_at")


def _end_latest(rep, result: RunResult) -> str:
    run = _confirmatory_runs(rep).last()
    ProbeRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    run.refresh_from_db()
    return runs._store_run_result(run=run, result=result)


@pytest.mark.parametrize("result, words", [
    (RunResult(RunStatus.TIMEOUT, None, 300.0, error="wall-clock limit of 300 s"), "ran out of time"),
    (RunResult(RunStatus.REJECTED, 0, 1.0, error="manifest.json is missing"), "image set was rejected"),
    (RunResult(RunStatus.ERROR, 1, 1.0, stderr_tail="Traceback\nValueError: boom\n"), "ValueError: boom"),
])
def test_a_failed_confirmatory_run_ends_failed_with_its_reason(pending, result, words):
    submission, rep = pending
    assert _confirmatory_runs(rep).count() == 1
    assert _end_latest(rep, result) == "failed"
    rep.refresh_from_db()
    assert rep.status == "failed" and words in rep.reason and rep.finished_at is not None
    submission.refresh_from_db()
    assert submission.state == states.IN_REVIEW
    assert _confirmatory_runs(rep).count() == 1  # not retried


def test_platform_faults_are_retried_then_end_failed(pending):
    _submission, rep = pending
    fault = RunResult(RunStatus.PLATFORM_ERROR, None, 0.0, error="engine down")
    assert _end_latest(rep, fault) == "platform error: retrying"
    assert _end_latest(rep, fault) == "platform error: retrying"
    assert _confirmatory_runs(rep).count() == replication.MAX_REPLICATION_RUNS
    assert _end_latest(rep, fault) == "failed"
    rep.refresh_from_db()
    assert rep.status == "failed" and "after 3 attempts (engine down)" in rep.reason
    assert _confirmatory_runs(rep).count() == replication.MAX_REPLICATION_RUNS


def test_a_decision_stops_the_pending_confirmatory_run(paused_worker, pending):
    """The shared worker is paused first, so the queued confirmatory run is this test's to execute."""
    submission, rep = pending
    bounty_services.submission_transition(submission_id=submission.pk, from_states=(states.IN_REVIEW,),
                                          to_state=states.OUT_OF_SCOPE, reason="decided")
    run = _confirmatory_runs(rep).get()
    assert runs.run_execute(run_id=str(run.pk)) == RunStatus.CANCELLED
    rep.refresh_from_db()
    assert rep.status == "failed" and "stopped: the submission was out_of_scope" in rep.reason
    assert Replication.objects.get(pk=rep.pk).seed == rep.seed


def test_robustness_re_measures_each_significant_test_under_the_four_changes(pending):
    submission, rep = pending
    assert rep.robustness == {"status": "pending", "tests": {}}
    assert replication.robustness_execute(replication_id=rep.pk) == "done"
    rep.refresh_from_db()
    tests = rep.robustness["tests"]
    assert rep.robustness["status"] == "done" and tests
    for row in tests.values():
        assert set(row) == {"pad", "mirror", "jpeg", "scale", "verdict", "broken_by"}
        assert row["verdict"] in ("robust", "fragile") and (row["verdict"] == "fragile") == bool(row["broken_by"])
        assert set(row["pad"]) == {"estimate", "p_value", "same_direction"}
    assert replication.robustness_execute(replication_id=rep.pk) == "nothing to do"  # once
    submission.refresh_from_db()
    assert submission.state == states.IN_REVIEW


def test_the_measured_mail_and_webhook_say_replication_is_pending(pending, mailoutbox, monkeypatch):
    submission, _rep = pending
    submission.participant.email = "fay@example.org"
    submission.participant.save()
    assert notifications.notify_state_change(submission_id=submission.pk, from_state=states.MEASURED,
                                             to_state=states.IN_REVIEW)
    assert "Replication pending" in mailoutbox[-1].body
    Webhook.objects.create(challenge=submission.challenge, url="http://127.0.0.1:9/hook", secret="s")
    sent = []
    monkeypatch.setattr(webhooks.current_app, "send_task", lambda name, args: sent.append(args))
    assert webhooks.webhooks_schedule(submission_id=submission.pk, from_state=states.MEASURED,
                                      to_state=states.IN_REVIEW, at=timezone.now()) == 1
    assert json.loads(sent[0][2])["replication"] == "pending"
    webhooks.webhooks_schedule(submission_id=submission.pk, from_state=states.IN_REVIEW,
                               to_state=states.ACCEPTED, at=timezone.now())
    assert "replication" not in json.loads(sent[1][2])
