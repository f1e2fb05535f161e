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
from probekit.measurement._confounds import find_confounds, mark_confounded
from probekit.measurement._curve import compression_curve
from probekit.measurement._document import (
    amplification,
    build_tests,
    power_warnings,
    public,
    significant_direction,
)
from probekit.measurement._multiplicity import apply_holm, multiplicity
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


@dataclasses.dataclass
class _Run:
    """One measurement's settings and what it has observed so far, model after model."""

    image_set: object
    units: list
    ratios: list
    options: dict
    seed: int
    cache_dir: object
    workers: int
    progress: object
    total: int
    done: int = 0
    hashes: dict = dataclasses.field(default_factory=dict)
    base_observations: list | None = None

    def observe(self, units, model_name: str, *, counted: bool) -> list[dict]:
        def step(done: int, _total: int) -> None:
            if self.progress and counted:
                self.progress(self.done + done, self.total)

        observations = observe(units, self.image_set, model_name=model_name, ratios=self.ratios, options=self.options,
                               cache_dir=self.cache_dir, workers=self.workers, progress=step, hashes=self.hashes)
        self.done += len(units) if counted else 0
        return observations

    def measure(self, model_name: str) -> tuple[list[dict], dict]:
        """(tests, units by test id) of one model; the first model's observations are kept for the pictures."""
        observations = self.observe(self.units, model_name, counted=True)
        singles = None
        if self.image_set.compose == "pairs" and any(item.base for item in self.image_set.items):
            # Counterfactual tuples of a pairs set are compared as the single images they are.
            singles = self.observe([i for i in self.image_set.items if i.base], model_name, counted=False)
        if self.base_observations is None:
            self.base_observations = observations
            self.units = with_hashes(self.image_set, self.units, self.hashes)  # the next models read the same files
        variant = None if "@" not in model_name else model_name
        return build_tests(observations, groups=self.image_set.groups, ratios=[ratio_key(r) for r in self.ratios],
                           variant=variant, seed=self.seed, base_observations=singles)


def _group_summary(tests: list[dict], groups: list[str]) -> dict:
    summary = {group: {"kept_rate": {}} for group in groups}
    for test in tests:
        if test["kind"] == "group_rate" and test["variant"] is None:
            for group, rate in test["rates"].items():
                summary[group]["kept_rate"].setdefault(test["ratio"], rate)
    return summary


def _amplifications(measured: dict, model: str, variants: list[str], *, seed: int) -> list[dict]:
    """Every variant test against its base-model test, on the same units."""
    base_tests, base_units = measured[model]
    base_by_id = {t["id"]: t for t in base_tests}
    found = []
    for name in variants:
        variant_tests, variant_units = measured[name]
        for test in variant_tests:
            original = base_by_id.get(test["id"].split("#", 1)[0])
            if original is not None:
                found.append(amplification(original, base_units[original["id"]], test, variant_units[test["id"]],
                                           seed=seed))
    return found


def _generalization(base_tests: list[dict], others: dict[str, list[dict]], model: str) -> dict:
    """Base test id → the models on which it is Holm-significant in the same direction."""
    holds = {t["id"]: ([model] if significant_direction(t) else []) for t in base_tests}
    for other, other_tests in others.items():
        by_id = {t["id"]: t for t in other_tests}
        for test in base_tests:
            twin = by_id.get(test["id"])
            direction = significant_direction(test)
            if twin is not None and direction and significant_direction(twin) == direction:
                holds[test["id"]].append(other)
    return holds


def _primary(image_set, base_tests: list[dict], warnings: list[str]) -> str | None:
    """The pre-registered test id, when the measurement produced it (a challenge may measure other ratios)."""
    wanted = image_set.primary
    if wanted is not None and not any(t["id"] == wanted and t["p_value"] is not None for t in base_tests):
        warnings.append(f"the pre-registered primary {wanted} was not produced by this measurement (no such test, or "
                        "it has no units); every test is in one Holm family instead.")
        return None
    return wanted


def _document(run: _Run, *, model, names, tests, base_tests, family, confounds, generalization, warnings,
              probe_sha256, versions) -> dict:
    image_set = run.image_set
    # every item, observed or not (a pairs set may leave images unpaired), by its content
    items = with_hashes(image_set, list(image_set.items), run.hashes)
    return {
        "schema": SCHEMA, "model": model, "model_version": versions[model], "variants": names[1:], "seed": run.seed,
        "ratios": [ratio_key(r) for r in run.ratios], "compose": image_set.compose,
        "compose_options": run.options if image_set.compose == "pairs" else None,
        "n_images": len(items), "n_units": len(run.units), "title": image_set.title,
        "hypothesis": image_set.hypothesis, "attribute": image_set.attribute, "group_names": image_set.groups,
        "hashes": {"manifest": image_set.manifest_sha256, "images": {item.id: item.sha256 for item in items},
                   "probe": probe_sha256, "models": versions},
        "versions": _library_versions(), "tests": [public(t) for t in tests], "holm": family,
        "primary": family["primary"], "multiplicity": multiplicity(family), "confounds": confounds,
        "groups": _group_summary(base_tests, image_set.groups), "generalization": generalization,
        "compression_curve": compression_curve(
            tests, model=model, variants=names[1:],
            compression={n: getattr(get_model(n), "compression", None) for n in names[1:]}),
        "warnings": warnings,
    }


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
    seed : seeds pairing, bootstrap and permutation samples; part of the document.
    generalization : also measure on every other registered model's base version.
    workers : processes for the model runs (1 inside a Celery worker).
    cache_dir : observation cache keyed by content; None disables it.
    progress : callable(done, total) for the image runs.
    artifacts_dir : when given, plots and a contact sheet are written there.
    """
    # Hashed by the processes that observe the images, not one by one here before they start.
    image_set = _load(directory, max_images=max_images, max_pixels=max_pixels, hash_images=False)
    options = resolve_compose_options(compose_options)
    units = _units_of(image_set, seed=seed, options=options)
    names = [model, *[v for v in variants if v != model]]
    others = [name for name in REGISTRY if name != model.split("@")[0]] if generalization else []
    run = _Run(image_set, units, list(ratios or DEFAULT_RATIOS), options, seed, cache_dir, workers, progress,
               total=len(units) * (len(names) + len(others)))
    measured = {name: run.measure(name) for name in [*names, *others]}
    versions = {name: get_model(name).version for name in measured}
    base_tests = measured[model][0]
    tests = [t for name in names for t in measured[name][0]] + _amplifications(measured, model, names[1:], seed=seed)
    warnings = power_warnings(tests)
    confounds = find_confounds(run.base_observations, image_set.groups)
    warnings += mark_confounded(tests, confounds)
    # one family: the document's tests and the generalization models' tests can all mark a finding
    family = apply_holm(tests, also=[t for other in others for t in measured[other][0]],
                        primary=_primary(image_set, base_tests, warnings))
    document = _document(run, model=model, names=names, tests=tests, base_tests=base_tests, family=family,
                         confounds=confounds, warnings=warnings, probe_sha256=probe_sha256, versions=versions,
                         generalization=_generalization(base_tests, {o: measured[o][0] for o in others}, model)
                         if generalization else {})
    if artifacts_dir is not None:
        from probekit.measurement._artifacts import render_contact_sheet, render_plots

        render_plots(document, Path(artifacts_dir))
        render_contact_sheet(image_set, run.units, run.base_observations, Path(artifacts_dir) / "contact_sheet.png",
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
