"""The model report's cost: its time as a ratio to one measurement of the same images.

A report re-measures a finding's image set on the challenge's model and on the candidate, then
compares them (paired cluster bootstrap, B = 2000 per test). Two figures, on the same set:

- `cold`: nothing cached, so both models observe every image — about two measurements' work;
- `cached`: the challenge's model's observations are in the measurement cache (as on the worker
  that measured the finding), so only the candidate observes the images.

One measurement = `measure_image_set` on the challenge's model alone (no variants), no cache.
Each timing is CPU seconds of this process (the model runs in it, workers=1), which other load on a
shared machine barely moves, the best of `BENCH_REPORT_REPEATS`. Prints one JSON line per figure.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grading.measurement import measure_image_set  # noqa: E402
from probekit.compare import compare_on_candidate  # noqa: E402
from tests.imagesets import contrast_composites  # noqa: E402

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


def main() -> None:
    n = int(os.environ.get("BENCH_REPORT_IMAGES", 128))
    repeats = int(os.environ.get("BENCH_REPORT_REPEATS", 3))
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = contrast_composites(Path(tmp) / "set", n=n, size=160)
        one, document = _best(repeats, lambda: measure_image_set(root, model=MODEL, seed=0))
        cold, _ = _best(repeats, lambda: compare_on_candidate(root, model=MODEL, candidate=CANDIDATE,
                                                              document=document, seed=0))
        cache = Path(tmp) / "cache"
        measure_image_set(root, model=MODEL, seed=0, cache_dir=cache)  # what the finding's measurement left
        cached = []

        def warm() -> dict:
            # every repeat starts with the candidate uncached: a fresh copy of the model's cache
            import shutil

            fresh = Path(tmp) / f"cache-{len(cached)}"
            shutil.copytree(cache, fresh)
            started = time.process_time()
            result = compare_on_candidate(root, model=MODEL, candidate=CANDIDATE, document=document, seed=0,
                                          cache_dir=fresh)
            cached.append(time.process_time() - started)
            return result

        for _ in range(repeats):
            warm()
    common = {"bench": "model_report", "model": MODEL, "candidate": CANDIDATE, "images": n,
              "measurement_s": round(one, 3)}
    print(json.dumps({**common, "cache": "cold", "report_s": round(cold, 3), "ratio": round(cold / one, 2),
                      "goal_ratio": GOAL_COLD}), flush=True)
    print(json.dumps({**common, "cache": "model cached", "report_s": round(min(cached), 3),
                      "ratio": round(min(cached) / one, 2), "goal_ratio": GOAL_CACHED}), flush=True)


if __name__ == "__main__":
    main()
