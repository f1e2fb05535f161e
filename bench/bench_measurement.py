"""Measurement throughput against its floor, and how it scales.

Floor = decode the PNG + the bare model call, run on the same process pool in the same run.
End-to-end = `measure_image_set` (validation, decode, model, crop windows, region facts,
statistics, document). Prints one JSON line per figure.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from grading.measurement import measure_image_set  # noqa: E402
from probekit import get_model  # noqa: E402
from probekit.writer import ImageSetWriter  # noqa: E402
from tests.imagesets import flat_square, textured_square  # noqa: E402

MODEL = "spectral-residual"
SIZE = (1024, 768)


def make_set(root: Path, n: int) -> Path:
    """n composites of 1024×768: a textured and a flat subject side by side."""
    subject = 320
    tiles = [(textured_square(subject, k), flat_square(subject, k)) for k in range(8)]
    with ImageSetWriter(root, title="bench", groups=["high", "low"]) as writer:
        for k in range(n):
            high, low = tiles[k % 8]
            canvas = Image.new("RGB", SIZE, (128, 128, 128))
            left, right = (96, 224), (608, 224)
            a, b = (left, right) if k % 2 else (right, left)
            canvas.paste(high, a)
            canvas.paste(low, b)
            writer.add(canvas, id=f"i{k:05d}", regions=[("high", (*a, subject, subject)), ("low", (*b, subject, subject))])
    return root


def _floor_chunk(paths: list[str]) -> int:
    model = get_model(MODEL)
    for path in paths:
        with Image.open(path) as image:
            model._saliency_small(image.convert("RGB"))
    return len(paths)


def floor_seconds(root: Path, workers: int) -> float:
    paths = sorted(str(p) for p in (root / "images").glob("*.png"))
    chunks = [paths[i:i + 64] for i in range(0, len(paths), 64)]
    started = time.perf_counter()
    if workers == 1:
        for chunk in chunks:
            _floor_chunk(chunk)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_floor_chunk, chunks))
    return time.perf_counter() - started


def measure_seconds(root: Path, workers: int) -> float:
    started = time.perf_counter()
    measure_image_set(root, model=MODEL, seed=0, workers=workers, cache_dir=None)
    return time.perf_counter() - started


def main() -> None:
    sizes = [int(v) for v in os.environ.get("BENCH_MEASURE_SIZES", "100,1000,5000").split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-measure-") as tmp:
        for n in sizes:
            root = make_set(Path(tmp) / f"set-{n}", n)
            workers_list = (1, 2) if n == 1000 else (2,)
            for workers in workers_list:
                floor = floor_seconds(root, workers)
                total = measure_seconds(root, workers)
                print(json.dumps({"bench": "measurement", "model": MODEL, "images": n, "workers": workers,
                                  "seconds": round(total, 2), "images_per_s": round(n / total, 1),
                                  "floor_seconds": round(floor, 2), "ratio_to_floor": round(total / floor, 2)}),
                      flush=True)


if __name__ == "__main__":
    main()
