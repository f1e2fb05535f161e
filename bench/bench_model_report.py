"""The model report's cost: its time as a ratio to one measurement of the same images.

A report re-measures a finding's image set on the challenge's model and on the candidate, then
compares them (paired cluster bootstrap, B = 2000 per test). Two figures, on the same set:

- `cold`: nothing cached, so both models observe every image — about two measurements' work;
- `cached`: the challenge's model's observations are in the measurement cache (as on the worker
  that measured the finding), so only the candidate observes the images.

One measurement = `measure_image_set` on the challenge's model alone (no variants), no cache.
Then the same for u2netp against u2netp@int8 on fewer images (`BENCH_REPORT_U2_IMAGES`, 0 skips
it), as a figure without a goal: the int8 model itself costs more per image than u2netp here.

Each timing is CPU seconds of this process (the model runs in it, workers=1), which other load on a
shared machine barely moves, the best of `BENCH_REPORT_REPEATS`. Prints one JSON line per figure.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grading.measurement import measure_image_set, warm_up  # noqa: E402
from probekit.compare import compare_on_candidate  # noqa: E402
from probekit.synthetic import contrast_composites  # noqa: E402

MODEL = os.environ.get("BENCH_REPORT_MODEL", "spectral-residual")
CANDIDATE = os.environ.get("BENCH_REPORT_CANDIDATE", "spectral-residual@32px")
GOAL_COLD, GOAL_CACHED = 2.5, 1.5


def _best(repeats: int, run) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        started = time.process_time()
        value = run()
        best = min(best, time.process_time() - started)
    return best, value


def figures(model: str, candidate: str, n: int, repeats: int, goals: bool) -> list[dict]:
    warm_up(model)  # sessions, derived variants and libraries loaded once, outside every timing
    warm_up(candidate)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = contrast_composites(Path(tmp) / "set", n=n, size=160)
        one, document = _best(repeats, lambda: measure_image_set(root, model=model, seed=0))
        cold, _ = _best(repeats, lambda: compare_on_candidate(root, model=model, candidate=candidate,
                                                              document=document, seed=0))
        cache = Path(tmp) / "cache"
        measure_image_set(root, model=model, seed=0, cache_dir=cache)  # what the finding's measurement left
        cached = []
        for k in range(repeats):
            # every repeat starts with the candidate uncached: a fresh copy of the model's cache
            fresh = Path(tmp) / f"cache-{k}"
            shutil.copytree(cache, fresh)
            started = time.process_time()
            compare_on_candidate(root, model=model, candidate=candidate, document=document, seed=0, cache_dir=fresh)
            cached.append(time.process_time() - started)
    common = {"bench": "model_report", "model": model, "candidate": candidate, "images": n,
              "measurement_s": round(one, 3)}
    rows = [{**common, "cache": "cold", "report_s": round(cold, 3), "ratio": round(cold / one, 2)},
            {**common, "cache": "model cached", "report_s": round(min(cached), 3),
             "ratio": round(min(cached) / one, 2)}]
    if goals:
        rows[0]["goal_ratio"], rows[1]["goal_ratio"] = GOAL_COLD, GOAL_CACHED
    return rows


def main() -> None:
    runs = [(MODEL, CANDIDATE, int(os.environ.get("BENCH_REPORT_IMAGES", 128)),
             int(os.environ.get("BENCH_REPORT_REPEATS", 3)), True)]
    u2_images = int(os.environ.get("BENCH_REPORT_U2_IMAGES", 24))
    if u2_images:
        # u2netp@int8 costs more per image than u2netp on onnxruntime's CPU kernels: no goal, a figure
        runs.append(("u2netp", "u2netp@int8", u2_images, 1, False))
    for run in runs:
        for row in figures(*run):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
