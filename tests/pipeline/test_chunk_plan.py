"""A split measurement's chunk plan: every unit once, equal chunks, as many as fill the worker slots evenly;
with the model's measured speed, chunks of about the target time and short measurements whole."""
from __future__ import annotations

import pytest
from django.core.cache import cache

from grading.models import Measurement
from grading.speed import seconds_per_observation, speed_record
from pipeline.measurements import _chunks
from pipeline.scheduling import chunk_plan
from probekit.synthetic import contrast_composites

MODEL = "spectral-residual"


@pytest.fixture(scope="module")
def forty(tmp_path_factory):
    return contrast_composites(tmp_path_factory.mktemp("forty"), n=40)


def _options(**overrides) -> dict:
    options = dict(model=MODEL, variants=[], ratios=None, compose_options={}, generalization=False,
                   max_images=5_000, max_pixels=25_000_000)
    options.update(overrides)
    return options


@pytest.mark.parametrize(("size", "slots", "variants", "count"), [
    (16, 2, [], 4),  # 3 chunks of at most 16 would leave one running alone: 4 of 10
    (16, 3, [], 3),
    (8, 2, [], 6),
    (40, 2, [f"{MODEL}@32px"], 2),  # 80 units over two models: one chunk of each model per slot
    (16, 2, [f"{MODEL}@32px"], 6),
])
def test_chunks_are_even_fill_the_slots_and_cover_every_unit_once(forty, settings, size, slots, variants, count):
    settings.MEASURE_CHUNK_SIZE, settings.WORKER_CONCURRENCY = size, slots
    chunks = _chunks(Measurement(seed=0), forty, _options(variants=variants))
    assert len(chunks) == count
    sizes = [stop - start for _model, start, stop in chunks]
    assert max(sizes) <= size and max(sizes) - min(sizes) <= 1
    for model in [MODEL, *variants]:
        covered = [unit for name, start, stop in chunks if name == model for unit in range(start, stop)]
        assert covered == list(range(40))


def test_a_set_within_one_chunk_is_not_split(forty, settings):
    settings.MEASURE_CHUNK_SIZE, settings.WORKER_CONCURRENCY = 40, 2
    assert _chunks(Measurement(seed=0), forty, _options()) == []


# --- cut by time (pipeline.scheduling) -----------------------------------------------------------


def test_with_a_known_speed_a_big_set_is_cut_into_chunks_of_about_the_target_time():
    speeds = {"u2netp": 0.8, "u2netp@int8": 0.4}
    plan = chunk_plan(units=1000, models=list(speeds), speeds=speeds, slots=2, max_units=200, target_s=10,
                      split_min_s=45)
    for model, speed in speeds.items():
        chunks = [(start, stop) for name, start, stop in plan if name == model]
        assert [unit for start, stop in chunks for unit in range(start, stop)] == list(range(1000))
        assert max((stop - start) * speed for start, stop in chunks) <= 10  # no slot held longer than the target
    # The cap on units still holds for a very fast model.
    fast = chunk_plan(units=1000, models=["fast"], speeds={"fast": 0.001}, slots=2, max_units=200, target_s=10,
                      split_min_s=0.5)
    assert max(stop - start for _m, start, stop in fast) <= 200


def test_a_measurement_expected_to_be_short_is_never_split():
    assert chunk_plan(units=40, models=["u2netp"], speeds={"u2netp": 0.8}, slots=2, max_units=16, target_s=10,
                      split_min_s=45) == []


def test_without_a_speed_or_a_time_target_the_plan_is_by_size():
    by_size = chunk_plan(units=40, models=["m"], speeds={"m": None}, slots=2, max_units=16, target_s=10,
                         split_min_s=45)
    assert len(by_size) == 4
    assert chunk_plan(units=40, models=["m"], speeds={"m": 0.8}, slots=2, max_units=16, target_s=0,
                      split_min_s=45) == by_size


def test_a_model_never_measured_here_is_timed_on_the_set_before_the_plan(forty, settings):
    settings.MEASURE_CHUNK_TARGET_S, settings.MEASURE_SPLIT_MIN_S, settings.MEASURE_CHUNK_SIZE = 10, 0.0, 16
    cache.delete(f"model-speed:{MODEL}")
    assert seconds_per_observation(model=MODEL) is None
    chunks = _chunks(Measurement(seed=0), forty, _options())
    speed = seconds_per_observation(model=MODEL)
    assert speed is not None and speed > 0
    assert [unit for _m, start, stop in chunks for unit in range(start, stop)] == list(range(40))
    assert all((stop - start) <= max(1, int(10 / speed)) for _m, start, stop in chunks)
    cache.delete(f"model-speed:{MODEL}")


def test_the_speed_is_a_running_mean_of_finished_work():
    cache.delete("model-speed:test-model")
    speed_record(model="test-model", observations=10, seconds=10.0)
    assert seconds_per_observation(model="test-model") == pytest.approx(1.0)
    speed_record(model="test-model", observations=10, seconds=20.0)
    assert 1.0 < seconds_per_observation(model="test-model") < 2.0
    speed_record(model="test-model", observations=0, seconds=5.0)  # nothing observed: no record
    assert 1.0 < seconds_per_observation(model="test-model") < 2.0
    cache.delete("model-speed:test-model")


def test_a_participants_modest_measurement_keeps_its_chunks_on_the_default_queue(settings):
    from bounty.models import Submission
    from pipeline.scheduling import chunk_queue_name

    settings.MEASURE_BULK_MIN_S = 180
    cache.set("model-speed:slowish", 2.0)
    participant = Measurement(submission=Submission(is_demo=False))
    modest = [("slowish", 0, 12), ("slowish", 12, 24)]  # 48 s
    big = [("slowish", k * 5, k * 5 + 5) for k in range(40)]  # 400 s
    assert chunk_queue_name(measurement=participant, chunks=modest) == "celery"
    assert chunk_queue_name(measurement=participant, chunks=big) == "bulk"
    assert chunk_queue_name(measurement=Measurement(submission=Submission(is_demo=True)), chunks=modest) == "bulk"
    assert chunk_queue_name(measurement=participant, chunks=[("never-measured", 0, 4)]) == "bulk"
    cache.delete("model-speed:slowish")
