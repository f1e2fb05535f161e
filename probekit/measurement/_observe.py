"""Observations: every image (or platform-built composite) through one model.

An observation holds the salient point, one crop window per ratio and the per-region facts of
probekit.measure. Observations are cached on disk by content (image hashes, layout, model
version, ratios), so re-measuring the same images on the same model version costs a read.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from probekit import get_model, ratio_key
from probekit.imageset import file_sha256
from probekit.measure import region_facts
from probekit.measurement._compose import Composite, build_composite

CACHE_REVISION = 3  # 3: each region of a probe-built image carries its pixels' hash


def _cache_path(cache_dir: Path | None, model, ratios, unit_key: str) -> Path | None:
    if cache_dir is None:
        return None
    text = "|".join([str(CACHE_REVISION), model.name, model.version, ",".join(ratio_key(r) for r in ratios), unit_key])
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Path(cache_dir) / digest[:2] / f"{digest}.json"


def _cache_read(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _cache_write(path: Path | None, value: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump(value, handle)
        os.replace(tmp, path)
    except OSError:
        pass  # the cache is an optimisation; measuring again is always correct


def _observe_unit(unit, image_set, model, ratios, options, cache_dir) -> dict:
    composite = isinstance(unit, Composite)
    # The facts depend on the labelled regions as well as the pixels: both are in the key.
    labelled = [unit.first, unit.second] if composite else [unit]
    regions_key = json.dumps([[(r.group, list(r.box)) for r in item.regions] for item in labelled])
    key = (unit.key if composite else unit.sha256) + "|" + regions_key
    cache = _cache_path(cache_dir, model, ratios, key)
    core = _cache_read(cache)
    if core is None:
        if composite:
            image, regions = build_composite(unit, image_set, options)
        else:
            image = image_set.open_image(unit)
            regions = [(r.group, r.box, None) for r in unit.regions]
        result = model.analyze(image, ratios, top_k=0, keep_map=True)
        facts = region_facts(result.salient_point, result.crops, result.saliency, [(g, b) for g, b, _ in regions])
        for fact, (_g, box, slot) in zip(facts, regions):
            fact["slot"] = slot
            if not composite:
                # the same subject pasted into several probe-built images: identical region pixels
                x, y, w, h = box
                pixels = f"{w}x{h}|".encode() + image.crop((x, y, x + w, y + h)).tobytes()
                fact["content"] = hashlib.sha256(pixels).hexdigest()[:24]
        core = {"width": result.width, "height": result.height, "point": list(result.salient_point),
                "crops": {k: list(v) for k, v in result.crops.items()}, "regions": facts}
        _cache_write(cache, core)
    observation = {"id": unit.id, **core}
    if composite:
        observation.update(composite=True, orientation=unit.orientation, first_group=_group_of(unit.first),
                           parts=[unit.first.id, unit.second.id], base=None, pair=unit.pair)
    else:
        observation.update(composite=False, orientation=None, first_group=None, parts=None, base=unit.base, pair=None)
    return observation


def _group_of(item) -> str:
    return item.regions[0].group


def with_hashes(image_set, units: list, known: dict[str, str]) -> list:
    """`units` with the sha256 of every image they use (the cache is keyed by content).

    Hashes in `known` (item id → sha256) are taken as they are; the others are read from the
    files here and added to `known`, so the process that reads an image for the model hashes it.
    """
    hashed: dict[str, object] = {}

    def item(original):
        if original.id not in hashed:
            sha256 = original.sha256 or known.get(original.id)
            if sha256 is None:
                sha256 = known[original.id] = file_sha256(image_set.path_of(original))
            hashed[original.id] = dataclasses.replace(original, sha256=sha256)
        return hashed[original.id]

    return [dataclasses.replace(u, first=item(u.first), second=item(u.second)) if isinstance(u, Composite) else item(u)
            for u in units]


def single_threaded() -> None:
    """One OpenCV thread in this measuring process (a worker slot): the processes are the parallelism,
    and OpenCV's own thread pool would only oversubscribe the cores they share."""
    import cv2

    cv2.setNumThreads(1)


@contextlib.contextmanager
def _forking_single_threaded():
    """The pool's processes inherit one OpenCV thread; this process gets its own setting back.

    Set before the fork, never in the child: a forked child resizing OpenCV's pool of threads
    that only its parent has waits for them forever."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _observe_chunk(args) -> tuple[list[dict], dict[str, str]]:
    model_name, units, image_set, ratios, options, cache_dir = args
    model = get_model(model_name)
    hashes: dict[str, str] = {}
    units = with_hashes(image_set, units, hashes)
    return [_observe_unit(unit, image_set, model, ratios, options, cache_dir) for unit in units], hashes


def observe(units, image_set, *, model_name: str, ratios, options: dict, cache_dir=None, workers: int = 1,
            chunk_size: int = 64, progress=None, hashes: dict[str, str] | None = None) -> list[dict]:
    """Observations of `units` on `model_name`, in the units' order, however many processes.

    Images the units carry no sha256 for are hashed by the process that observes them; their
    hashes are added to `hashes` (item id → sha256) when given."""
    chunks = [units[i:i + chunk_size] for i in range(0, len(units), chunk_size)]
    if workers > 1:
        # A chunk needs only the set's root to open its images: don't pickle every item into every job.
        image_set = dataclasses.replace(image_set, items=[], manifest={})
    jobs = [(model_name, chunk, image_set, list(ratios), options, cache_dir) for chunk in chunks]
    observations, done, found = [], 0, {}
    with contextlib.ExitStack() as stack:
        if workers <= 1 or len(chunks) <= 1:
            results = map(_observe_chunk, jobs)
        else:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
            with _forking_single_threaded():
                results = pool.map(_observe_chunk, jobs)  # submits every job: the processes start here
        for job, (chunk_result, chunk_hashes) in zip(jobs, results):
            observations += chunk_result
            found.update(chunk_hashes)
            done += len(job[1])
            if progress:
                progress(done, len(units))
    if hashes is not None:
        hashes.update(found)
    return observations
