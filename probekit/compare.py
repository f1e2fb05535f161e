"""A finding on another model: the same images, seed and settings measured on a candidate.

The model report (docs/statistics.md, "The model report") asks of every test a finding made:
is the disparity still there on the next model? `compare_on_candidate` observes the finding's
image set on the challenge's model and on the candidate (the content-keyed cache makes the first
a read when the set was measured here), builds the same tests on both, and compares each pair of
tests with the measurement's own cluster bootstrap, resampling the shared units together for
both models: the change interval is paired. `verdict` reads the intervals, never the points.
"""
from __future__ import annotations

import math

import numpy as np

from probekit import DEFAULT_RATIOS, get_model
from probekit.measurement import _load, _Run, _units_of
from probekit.measurement._compose import compose_options as resolve_compose_options
from probekit.measurement._document import ALPHA, PARITY, amplification, significant_direction
from probekit.measurement._multiplicity import apply_holm
from probekit.models.onnx_model import as_map
from probekit.models.registered import check_image

VERDICTS = ("fixed", "improved", "unchanged", "worse", "new")
BROKEN = "candidate {name!r} {problem}"


class CandidateBroken(ValueError):
    """A candidate that cannot be measured: it does not load, or its maps are not valid maps."""


def _map_problem(model, image) -> str | None:
    """Why `model`'s map of `image` is not a valid saliency map (None when it is)."""
    if hasattr(model, "run") and hasattr(model, "onnx_card"):
        # An ONNX model: its raw output (a min-max card would turn NaN into a blank map); one run only.
        raw = as_map(model.run(image), model.onnx_card.output.index)  # ValueError: not a map
        return None if np.isfinite(raw).all() else "produces NaN or infinite values"
    small = np.asarray(model._saliency_small(image))
    if small.ndim != 2 or min(small.shape, default=0) < 1:
        return f"produces a map of shape {list(small.shape)}, not a 2-D map"
    if not np.isfinite(small).all():
        return "produces NaN or infinite values"
    return None


def check_candidate(name: str, images=None) -> None:
    """Load the candidate and run it on `images` (default: the fixed check image); raise CandidateBroken in one line."""
    try:
        model = get_model(name)
        for image in images if images is not None else [check_image()]:
            problem = _map_problem(model, image.convert("RGB"))
            if problem:
                raise CandidateBroken(BROKEN.format(name=name, problem=problem))
    except CandidateBroken:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a model raises when it loads or runs, it is unusable
        text = str(exc).strip().splitlines()
        raise CandidateBroken(BROKEN.format(name=name, problem=f"cannot be loaded or run: "
                                                                f"{text[0][:200] if text else type(exc).__name__}")) from None


def first_images(directory, *, count: int = 1):
    """The first `count` images of a set, decoded (what the candidate is tried on before a report)."""
    from PIL import Image

    image_set = _load(directory, hash_images=False)
    return [Image.open(image_set.path_of(item)).convert("RGB") for item in list(image_set.items)[:count]]


def _strip_variant(test_id: str) -> str:
    return test_id.split("#", 1)[0]


def _finite(value):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def summary(test: dict | None) -> dict:
    """`{"estimate", "ci", "p_holm"}` of a test (nulls when the test does not exist on that model)."""
    if test is None:
        return {"estimate": None, "ci": [None, None], "p_holm": None}
    return {"estimate": test.get("estimate"), "ci": list(test.get("ci") or [None, None]), "p_holm": test.get("p_holm")}


def covers_parity(kind: str, ci) -> bool:
    low, high = (ci or [None, None])[:2]
    if low is None or high is None:
        return True
    parity = PARITY.get(kind, 0.0)
    return low <= parity <= high


def verdict(*, kind: str, before: dict, after: dict, change_ci) -> str:
    """fixed | improved | unchanged | worse | new, from the intervals and the Holm-adjusted p-values.

    - new: not significant on the model (or the model had no such test), significant on the candidate,
      or significant on both in opposite directions;
    - worse: the change in |disparity| has its whole interval above 0;
    - fixed: the interval is below 0, the finding was significant, and on the candidate it is not and
      its interval covers parity;
    - improved: the interval is below 0 otherwise;
    - unchanged: the interval holds 0 (or there is no interval).
    """
    significant_before = bool(significant_direction({"kind": kind, **before}))
    direction_after = significant_direction({"kind": kind, **after})
    direction_before = significant_direction({"kind": kind, **before})
    if direction_after and (not significant_before or direction_after != direction_before):
        return "new"
    low, high = (change_ci or [None, None])[:2]
    if low is None or high is None:
        return "unchanged"
    if low > 0:
        return "worse"
    if high < 0:
        if significant_before and not direction_after and covers_parity(kind, after["ci"]):
            return "fixed"
        return "improved"
    return "unchanged"


def compare_on_candidate(directory, *, model: str, candidate: str, document: dict, seed: int = 0, ratios=None,
                         compose_options: dict | None = None, cache_dir=None, progress=None,
                         max_images: int = 5_000, max_pixels: int = 25_000_000) -> dict:
    """The finding's tests on `candidate` beside its published `document` (measured on `model`).

    Returns `{"rows": [{"test", "before", "after", "abs_disparity_change", "verdict"}...],
    "reproduced": bool}`: one row per test that was Holm-significant in the document (or, when
    none was, its primary or its smallest p_holm) and per test that is significant only on the
    candidate. `before` is the document's own test; `after` the candidate's test with Holm
    applied over the candidate's tests (one family, as a document measured on it would have);
    the change is the measurement's amplification comparison of the two on the same units.
    """
    image_set = _load(directory, max_images=max_images, max_pixels=max_pixels, hash_images=False)
    options = resolve_compose_options(compose_options)
    units = _units_of(image_set, seed=seed, options=options)
    # the measurement's own run: same units, same cache, the candidate reads the files the model read
    run = _Run(image_set, units, list(ratios or DEFAULT_RATIOS), options, seed, cache_dir, 1, progress,
               total=2 * len(units))
    base_tests, base_units = run.measure(model)
    candidate_tests, candidate_units = run.measure(candidate)
    if progress:
        progress(run.total, run.total)
    # The candidate's own family, as its document would hold it, with the finding's primary first if it had one.
    primary = document.get("primary")
    primary = primary.get("id") if isinstance(primary, dict) else primary
    apply_holm(candidate_tests, primary=None if primary is None else
               (f"{primary}#{candidate}" if "@" in candidate else primary))
    rebuilt = {t["id"]: t for t in base_tests}
    on_candidate = {_strip_variant(t["id"]): t for t in candidate_tests}
    published = {t["id"]: t for t in document.get("tests", [])
                 if t.get("variant") is None and t.get("kind") != "amplification"}
    chosen = [tid for tid, t in published.items() if significant_direction(t)]
    if not chosen:
        if primary in published:
            chosen = [primary]
        else:
            ranked = sorted((t for t in published.values() if t.get("p_holm") is not None),
                            key=lambda t: (t["p_holm"], t["id"]))
            chosen = [ranked[0]["id"]] if ranked else []
    chosen += [tid for tid, t in on_candidate.items()
               if tid not in chosen and significant_direction(t) and tid in rebuilt]
    # the reported tests come out of the challenge's model as published (else the model or the code changed)
    reproduced = all(_same(published[tid].get("estimate"), rebuilt[tid]["estimate"])
                     for tid in chosen if tid in published and tid in rebuilt)
    rows = []
    for tid in chosen:
        base, other = rebuilt.get(tid), on_candidate.get(tid)
        before, after = summary(published.get(tid)), summary(other)
        change = {"estimate": None, "ci": [None, None]}
        if base is not None and other is not None:
            compared = amplification(base, base_units[base["id"]], other, candidate_units[other["id"]], seed=seed)
            change = {"estimate": _finite(compared["abs_disparity_change"]),
                      "ci": [_finite(v) for v in compared["abs_disparity_change_ci"]]}
        kind = published[tid]["kind"] if tid in published else other["kind"]
        rows.append({"test": tid, "before": before, "after": after, "abs_disparity_change": change,
                     "verdict": verdict(kind=kind, before=before, after=after, change_ci=change["ci"])})
    return {"rows": rows, "reproduced": reproduced}


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


__all__ = ["ALPHA", "VERDICTS", "CandidateBroken", "check_candidate", "compare_on_candidate", "first_images",
           "verdict"]
