"""Measurement: the target model over an image set, and the metrics document (docs/statistics.md).

The platform, never the probe, measures: `measure_image_set` validates the set, runs every
image (or composite it builds itself) through the target and its variants, and returns the
metrics document. `document_dumps` gives its canonical bytes: the same images, model version
and seed always give the same bytes.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
from pathlib import Path

from probekit import DEFAULT_RATIOS, get_model, ratio_key
from probekit.imageset import validate_image_set
from probekit.measurement._compose import build_composite, plan_composites
from probekit.measurement._compose import compose_options as resolve_compose_options
from probekit.measurement._curve import compression_curve
from probekit.measurement._document import (
    amplification,
    apply_holm,
    build_tests,
    power_warnings,
    public,
    significant_direction,
)
from probekit.measurement._observe import observe, single_threaded, with_hashes
from probekit.models import REGISTRY

SCHEMA = 1
FLOAT_DIGITS = 10  # significant digits kept in the document: stable bytes across platforms
VERSIONED_LIBRARIES = ("numpy", "scipy", "pillow", "onnxruntime", "opencv-contrib-python-headless", "smartcrop")


def _library_versions() -> dict:
    versions = {}
    for name in VERSIONED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _load(directory, *, max_images: int = 5_000, max_pixels: int = 25_000_000, hash_images: bool = True):
    """The set as measurement reads it: validated without decoding (observing decodes every image)."""
    return validate_image_set(directory, max_images=max_images, max_pixels=max_pixels, max_total_bytes=2**40,
                              decode=False, hash_images=hash_images)


def _units_of(image_set, *, seed: int, options: dict):
    if image_set.compose == "pairs":
        return plan_composites(image_set, seed=seed, options=options)
    return list(image_set.items)


def _measure_model(units, image_set, *, model_name, ratio_keys, ratios, options, seed, cache_dir, workers, progress,
                   hashes):
    observations = observe(units, image_set, model_name=model_name, ratios=ratios, options=options,
                           cache_dir=cache_dir, workers=workers, progress=progress, hashes=hashes)
    singles = None
    if image_set.compose == "pairs" and any(item.base for item in image_set.items):
        # Counterfactual tuples of a pairs set are compared as the single images they are.
        singles = observe([i for i in image_set.items if i.base], image_set, model_name=model_name, ratios=ratios,
                          options=options, cache_dir=cache_dir, workers=workers, hashes=hashes)
    variant = None if "@" not in model_name else model_name
    tests, units_by_test = build_tests(observations, groups=image_set.groups, ratios=ratio_keys,
                                       variant=variant, seed=seed, base_observations=singles)
    return observations, tests, units_by_test


def _group_summary(tests: list[dict], groups: list[str]) -> dict:
    summary = {group: {"kept_rate": {}} for group in groups}
    for test in tests:
        if test["kind"] == "group_rate" and test["variant"] is None:
            for group, rate in test["rates"].items():
                summary[group]["kept_rate"].setdefault(test["ratio"], rate)
    return summary


def _strip_variant(test_id: str) -> str:
    return test_id.split("#", 1)[0]


def measure_image_set(
    directory,
    *,
    model: str,
    variants=(),
    ratios=None,
    seed: int = 0,
    compose_options: dict | None = None,
    probe_sha256: str | None = None,
    generalization: bool = False,
    workers: int = 1,
    cache_dir=None,
    progress=None,
    max_images: int = 5_000,
    max_pixels: int = 25_000_000,
    artifacts_dir=None,
) -> dict:
    """Measure the image set in `directory` and return the metrics document.

    Parameters
    ----------
    model : the target (`u2netp`, `spectral-residual`, …); `variants` are full names (`u2netp@int8`).
    ratios : aspect ratios h/w (default 0.56, 1.0, 1.14, 2.0).
    seed : seeds pairing, bootstrap; part of the document.
    generalization : also measure on every other registered model's base version.
    workers : processes for the model runs (1 inside a Celery worker).
    cache_dir : observation cache keyed by content; None disables it.
    progress : callable(done, total) for the image runs.
    artifacts_dir : when given, plots and a contact sheet are written there.
    """
    # Hashed by the processes that observe the images, not one by one here before they start.
    image_set = _load(directory, max_images=max_images, max_pixels=max_pixels, hash_images=False)
    ratios = list(ratios or DEFAULT_RATIOS)
    ratio_keys = [ratio_key(r) for r in ratios]
    options = resolve_compose_options(compose_options)
    units = _units_of(image_set, seed=seed, options=options)
    names = [model, *[v for v in variants if v != model]]
    if generalization:
        base = model.split("@")[0]
        others = [name for name in REGISTRY if name != base]
    else:
        others = []
    total = len(units) * (len(names) + len(others))
    done_before = 0

    def step(done: int, _total: int) -> None:
        if progress:
            progress(done_before + done, total)

    versions, all_tests, units_by_model, base_observations, hashes = {}, [], {}, None, {}
    for name in names:
        target = get_model(name)
        versions[name] = target.version
        observations, tests, units_by_test = _measure_model(
            units, image_set, model_name=name, ratio_keys=ratio_keys, ratios=ratios, options=options,
            seed=seed, cache_dir=cache_dir, workers=workers, progress=step, hashes=hashes)
        done_before += len(units)
        if base_observations is None:
            base_observations = observations
            units = with_hashes(image_set, units, hashes)  # the next models read the same files
        all_tests += tests
        units_by_model[name] = (tests, units_by_test)
    base_tests, base_units = units_by_model[model]
    base_by_id = {t["id"]: t for t in base_tests}
    for name in names[1:]:
        variant_tests, variant_units = units_by_model[name]
        for test in variant_tests:
            original = base_by_id.get(_strip_variant(test["id"]))
            if original is not None:
                all_tests.append(amplification(original, base_units[original["id"]], test, variant_units[test["id"]],
                                               seed=seed))
    warnings = power_warnings(all_tests)
    holds, other_tests_by_model = {}, {}
    if generalization:
        for other in others:
            target = get_model(other)
            versions[other] = target.version
            _obs, other_tests, _units = _measure_model(
                units, image_set, model_name=other, ratio_keys=ratio_keys, ratios=ratios, options=options,
                seed=seed, cache_dir=cache_dir, workers=workers, progress=step, hashes=hashes)
            done_before += len(units)
            other_tests_by_model[other] = other_tests
    # one family: the document's tests and the generalization models' tests can all mark a finding
    family = apply_holm(all_tests, also=[t for tests in other_tests_by_model.values() for t in tests])
    generalization_map = {}
    if generalization:
        holds = {t["id"]: ([model] if significant_direction(t) else []) for t in base_tests}
        for other, other_tests in other_tests_by_model.items():
            by_id = {t["id"]: t for t in other_tests}
            for test in base_tests:
                twin = by_id.get(test["id"])
                direction = significant_direction(test)
                if twin is not None and direction and significant_direction(twin) == direction:
                    holds[test["id"]].append(other)
        generalization_map = {tid: models for tid, models in holds.items()}
    tests = [public(t) for t in all_tests]
    # every item, observed or not (a pairs set may leave images unpaired), by its content
    image_set = dataclasses.replace(image_set, items=with_hashes(image_set, list(image_set.items), hashes))
    document = {
        "schema": SCHEMA,
        "model": model,
        "model_version": get_model(model).version,
        "variants": [n for n in names[1:]],
        "seed": seed,
        "ratios": ratio_keys,
        "compose": image_set.compose,
        "compose_options": options if image_set.compose == "pairs" else None,
        "n_images": len(image_set.items),
        "n_units": len(units),
        "title": image_set.title,
        "hypothesis": image_set.hypothesis,
        "attribute": image_set.attribute,
        "group_names": image_set.groups,
        "hashes": {
            "manifest": image_set.manifest_sha256,
            "images": {item.id: item.sha256 for item in image_set.items},
            "probe": probe_sha256,
            "models": versions,
        },
        "versions": _library_versions(),
        "tests": tests,
        "holm": family,
        "groups": _group_summary(base_tests, image_set.groups),
        "generalization": generalization_map,
        "compression_curve": compression_curve(
            tests, model=model, variants=names[1:],
            compression={n: getattr(get_model(n), "compression", None) for n in names[1:]}),
        "warnings": warnings,
    }
    if artifacts_dir is not None:
        from probekit.measurement._artifacts import render_contact_sheet, render_plots

        render_plots(document, Path(artifacts_dir))
        render_contact_sheet(image_set, units, base_observations, Path(artifacts_dir) / "contact_sheet.png",
                             options=options)
    return json.loads(document_dumps(document))


def observe_image_set(directory, *, model: str, ratios=None, seed: int = 0, compose_options: dict | None = None,
                      cache_dir=None, workers: int = 1) -> list[dict]:
    """Per image (or composite) of a set: salient point, crop windows and region facts on `model`.

    The raw observations behind the metrics document, in the set's order, from the same cache.
    """
    image_set = _load(directory, hash_images=False)
    options = resolve_compose_options(compose_options)
    units = _units_of(image_set, seed=seed, options=options)
    return observe(units, image_set, model_name=model, ratios=list(ratios or DEFAULT_RATIOS), options=options,
                   cache_dir=cache_dir, workers=workers)


def measurement_plan(directory, *, model: str, variants=(), seed: int = 0, compose_options: dict | None = None,
                     generalization: bool = False, max_images: int = 5_000, max_pixels: int = 25_000_000) -> dict:
    """What a chunked measurement splits: the model names to run and the number of units."""
    image_set = _load(directory, max_images=max_images, max_pixels=max_pixels, hash_images=False)
    units = _units_of(image_set, seed=seed, options=resolve_compose_options(compose_options))
    names = [model, *[v for v in variants if v != model]]
    if generalization:
        names += [name for name in REGISTRY if name != model.split("@")[0]]
    return {"models": names, "n_units": len(units)}


def measure_chunk(directory, *, model: str, start: int, stop: int, ratios=None, seed: int = 0,
                  compose_options: dict | None = None, cache_dir, max_images: int = 5_000,
                  max_pixels: int = 25_000_000) -> int:
    """Observe units [start, stop) on one model into the cache; the merge then reads them back.

    Chunks share nothing but the content-keyed cache, so any worker may run any chunk, a chunk
    run twice writes the same files, and the merge's order is fixed by the plan, not by timing.
    """
    # Validated without hashes: observing hashes only the images its units use, not the whole set.
    image_set = _load(directory, max_images=max_images, max_pixels=max_pixels, hash_images=False)
    options = resolve_compose_options(compose_options)
    units = _units_of(image_set, seed=seed, options=options)[start:stop]
    single_threaded()  # a worker slot is one process on one core
    observe(units, image_set, model_name=model, ratios=list(ratios or DEFAULT_RATIOS), options=options,
            cache_dir=cache_dir)
    return len(units)


def _canonical(value):
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{FLOAT_DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _canonical(value.item())
    return value


def document_dumps(document: dict) -> str:
    """The canonical text of a metrics document: sorted keys, fixed float precision, no NaN."""
    return json.dumps(_canonical(document), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def warm_up(model: str = "spectral-residual") -> None:
    """Measure a tiny synthetic set on `model` with its plots, and throw the result away.

    What a process loads on its first measurement (the statistics, the model, matplotlib and its
    fonts) is then loaded: a worker calls it once before it forks its task processes, so their
    first measurement costs what every later one does. Use a model that holds no threads (the
    default is plain numpy): a forked child inherits what this loads.
    """
    import shutil
    import tempfile

    from PIL import Image

    from probekit.writer import ImageSetWriter

    scratch = Path(tempfile.mkdtemp(prefix="probekit-warm-up-"))
    try:
        with ImageSetWriter(scratch / "set", groups=["a", "b"], title="warm-up") as out:
            for k in range(4):
                image = Image.new("RGB", (64, 32), (128, 128, 128))
                image.paste((0, 0, 0) if k % 2 else (255, 255, 255), (4, 4, 28, 28))
                out.add(image, id=f"i{k}", regions=[("a", (0, 0, 32, 32)), ("b", (32, 0, 32, 32))])
        measure_image_set(scratch / "set", model=model, seed=0, artifacts_dir=scratch / "artifacts")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


__all__ = ["build_composite", "document_dumps", "measure_chunk", "measure_image_set", "measurement_plan",
           "observe_image_set", "warm_up"]
