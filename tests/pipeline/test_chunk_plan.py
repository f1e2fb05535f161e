"""A split measurement's chunk plan: every unit once, equal chunks, as many as fill the worker slots evenly."""
from __future__ import annotations

import pytest

from grading.models import Measurement
from pipeline.measurements import _chunks
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
