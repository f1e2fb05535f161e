"""The queue: a fair order over participants, an honest wait, demo and re-runs behind them."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from bounty import queue, services, states
from bounty.models import Submission
from grading.models import Measurement, MeasurementStatus
from pipeline import queue as pipeline_queue
from pipeline.models import ImageSet, ProbeRun
from sandbox.status import RunStatus
from tests.factories import challenge_create, user_create
from tests.factories import submission_create as factory_submission_create

pytestmark = pytest.mark.django_db


def submission_create(**kw) -> Submission:
    """The factory's, read back: the service has moved the row on to queued."""
    submission = factory_submission_create(**kw)
    submission.refresh_from_db()
    return submission


def _queued_run(submission) -> ProbeRun:
    return submission.runs.exclude(details__has_key="rerun_of").get(status="queued")


def _start(submission) -> None:
    """The worker's move: the run running, the submission with it."""
    ProbeRun.objects.filter(pk=_queued_run(submission).pk).update(status=RunStatus.RUNNING, started_at=timezone.now())
    services.submission_transition(submission_id=submission.pk, from_states=(states.QUEUED,), to_state=states.RUNNING)


def _finished_measurements(challenge, participant, durations_s) -> None:
    """Earlier submissions that ran and were measured in `durations_s` seconds each."""
    end = timezone.now()
    for seconds in durations_s:
        submission = submission_create(challenge=challenge, participant=participant, title="earlier")
        run = _queued_run(submission)
        ProbeRun.objects.filter(pk=run.pk).update(status="ok", started_at=end - timedelta(seconds=seconds),
                                                  finished_at=end)
        image_set = ImageSet.objects.create(run=run, path="x", n_images=1, manifest_sha256="sha256:0")
        Measurement.objects.create(submission=submission, image_set=image_set, model_name="m",
                                   status=MeasurementStatus.DONE, finished_at=end)
        services.submission_transition(submission_id=submission.pk, from_states=(states.QUEUED,),
                                       to_state=states.CANCELLED)  # out of the queue


@pytest.fixture
def board():
    challenge = challenge_create(slug="queue", daily_limit=50, total_limit=50)
    return challenge, user_create("alice"), user_create("bob"), user_create("carol")


def test_a_burst_from_one_participant_does_not_push_others_back(board):
    challenge, alice, bob, carol = board
    burst = [submission_create(challenge=challenge, participant=alice, title=f"a{k}") for k in range(4)]
    bobs = submission_create(challenge=challenge, participant=bob)
    carols = submission_create(challenge=challenge, participant=carol)
    assert [queue.queue_position(submission=s) for s in burst] == [1, 4, 5, 6]
    assert queue.queue_position(submission=bobs) == 2 and queue.queue_position(submission=carols) == 3


def test_demo_submissions_queue_behind_participants_and_use_no_quota(board):
    challenge, alice, bob, _carol = board
    demo = submission_create(challenge=challenge, participant=alice, is_demo=True)
    mine = submission_create(challenge=challenge, participant=bob)
    assert queue.queue_position(submission=mine) == 1 and queue.queue_position(submission=demo) == 2
    assert services.quota_usage(challenge=challenge, participant=alice)["total"] == 0
    assert pipeline_queue.run_queue_name(run_id=str(_queued_run(demo).pk)) == "bulk"
    assert pipeline_queue.run_queue_name(run_id=str(_queued_run(mine).pk)) == "celery"


def test_a_participant_at_the_cap_waits_only_while_someone_else_could_start(board):
    challenge, alice, bob, _carol = board
    first, second = (submission_create(challenge=challenge, participant=alice, title=t) for t in ("1", "2"))
    _start(first)
    assert not pipeline_queue.run_should_wait(run_id=str(_queued_run(second).pk))  # nobody else waits: no idle slot
    bobs = submission_create(challenge=challenge, participant=bob)
    assert pipeline_queue.run_should_wait(run_id=str(_queued_run(second).pk))
    assert not pipeline_queue.run_should_wait(run_id=str(_queued_run(bobs).pk))
    with override_settings(QUEUE_MAX_RUNNING_PER_PARTICIPANT=2):
        assert not pipeline_queue.run_should_wait(run_id=str(_queued_run(second).pk))


def test_a_deferred_run_is_put_back_with_a_fresh_queued_at_so_reconcile_leaves_it(board):
    challenge, alice, _bob, _carol = board
    run = _queued_run(submission_create(challenge=challenge, participant=alice))
    ProbeRun.objects.filter(pk=run.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    pipeline_queue.run_defer(run_id=str(run.pk))
    run.refresh_from_db()
    assert timezone.now() - run.queued_at < timedelta(minutes=1) and run.status == "queued"


def test_a_rerun_waits_for_any_participant_run_that_can_start(board):
    challenge, alice, bob, _carol = board
    measured = submission_create(challenge=challenge, participant=alice)
    rerun = ProbeRun.objects.create(submission=measured, backend="bwrap", details={"rerun_of": 1})
    assert pipeline_queue.run_queue_name(run_id=str(rerun.pk)) == "bulk"
    bobs = submission_create(challenge=challenge, participant=bob)
    assert pipeline_queue.run_should_wait(run_id=str(rerun.pk))
    _start(bobs)
    _start(measured)
    assert not pipeline_queue.run_should_wait(run_id=str(rerun.pk))  # nothing of a participant is waiting now


def test_the_wait_is_unknown_until_enough_submissions_were_measured(board):
    challenge, alice, bob, _carol = board
    _finished_measurements(challenge, alice, [100, 200])
    assert queue.queue_eta_s(position=1) is None
    _finished_measurements(challenge, alice, [40])
    # median of 40, 100, 200 s over two slots: the queue moves a place every 50 s
    with override_settings(WORKER_CONCURRENCY=2):
        assert queue.queue_eta_s(position=3) == 150
    assert queue.queue_eta_s(position=None) is None


def test_the_api_and_the_status_json_carry_position_and_wait_while_queued(client, board):
    challenge, alice, bob, _carol = board
    _finished_measurements(challenge, user_create("dave"), [60, 60, 60])
    ahead = submission_create(challenge=challenge, participant=bob)
    mine = submission_create(challenge=challenge, participant=alice)
    token = Token.objects.create(user=alice).key
    with override_settings(WORKER_CONCURRENCY=2):
        body = client.get(reverse("api-submission-detail", args=[mine.pk]), HTTP_AUTHORIZATION=f"Token {token}").json()
        assert (body["queue_position"], body["eta_s"]) == (2, 60)
        client.force_login(alice)
        assert "position 2 in the queue, about 1 min to start" in client.get(
            reverse("submission-detail", args=[mine.pk])).content.decode()
    _start(ahead)
    _start(mine)
    body = client.get(reverse("submission-status", args=[mine.pk])).json()
    assert body["state"] == states.RUNNING and (body["queue_position"], body["eta_s"]) == (None, None)


def test_with_little_history_the_wait_comes_from_the_models_speed_and_a_typical_set(board):
    from django.core.cache import cache

    from grading.speed import speed_record

    challenge, alice, _bob, _carol = board
    cache.delete("model-speed:speedy")
    _finished_measurements(challenge, alice, [100])  # one sample: too few for the median
    assert queue.queue_eta_s(position=2, model="speedy") is None  # nothing known of the model yet
    ImageSet.objects.update(n_images=40)
    ProbeRun.objects.update(wall_s=12.0)
    speed_record(model="speedy", observations=10, seconds=5.0)  # 0.5 s an image
    with override_settings(WORKER_CONCURRENCY=2):
        assert queue.queue_eta_s(position=2, model="speedy") == 32  # 2 × (12 + 40 × 0.5) / 2
    cache.delete("model-speed:speedy")


def test_a_measurement_in_progress_has_its_own_wait(board):
    from django.core.cache import cache

    from grading.services import SPLIT_HOLDER
    from grading.speed import speed_record

    cache.delete("model-speed:speedy")
    measurement = Measurement(model_name="speedy", progress_total=100, progress_done=40)
    assert queue.measurement_eta_s(measurement=measurement, model="speedy") is None
    speed_record(model="speedy", observations=10, seconds=5.0)
    assert queue.measurement_eta_s(measurement=measurement, model="speedy") == 30
    measurement.lease_holder = SPLIT_HOLDER  # split into chunks: every slot works on it
    with override_settings(WORKER_CONCURRENCY=2):
        assert queue.measurement_eta_s(measurement=measurement, model="speedy") == 15
    cache.delete("model-speed:speedy")


def test_demo_and_rerun_measurements_are_bulk_work_a_participants_is_not(board):
    from pipeline.scheduling import measurement_queue_name

    challenge, alice, bob, _carol = board
    own = Measurement(submission=submission_create(challenge=challenge, participant=bob), model_name="m")
    demo = Measurement(submission=submission_create(challenge=challenge, participant=alice, is_demo=True),
                       model_name="m")
    rerun = Measurement(submission=own.submission, model_name="m", rerun_of_id=1)
    assert measurement_queue_name(measurement=own) == "celery"
    assert measurement_queue_name(measurement=demo) == measurement_queue_name(measurement=rerun) == "bulk"
