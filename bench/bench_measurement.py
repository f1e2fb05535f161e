"""Measurement throughput against its floor, how it scales, and the speed-up of a second worker.

Floor = decode the PNG + the bare model call, run on the same process pool in the same run.
End-to-end = `measure_image_set` (validation, hashing, decode, model, crop windows, region facts,
statistics, document). Floor and end-to-end alternate `BENCH_MEASURE_REPEATS` times and the best
of each is kept (the machine may be shared); `cpu_ratio_to_floor` compares the CPU seconds both
spent (this process and its pool), which other load on the machine barely moves.

The worker speed-up is the platform's: a u2netp set split into chunk tasks (a Celery chord)
on real workers of a throwaway platform, then merged, once with one worker process and once
with two. Prints one JSON line per figure, each with its goal.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from PIL import Image  # noqa: E402

from grading.measurement import measure_image_set  # noqa: E402
from probekit import get_model  # noqa: E402
from probekit.synthetic import flat_square, textured_square  # noqa: E402
from probekit.writer import ImageSetWriter  # noqa: E402

MODEL = "spectral-residual"
SIZE = (1024, 768)
PATTERNS = 16  # distinct composites: 8 tiles × 2 sides (image k looks like image k % 16)
FLOOR_CHUNK = 64
GOAL_RATIO_5000 = 1.25
SPEEDUP_MODEL = "u2netp"
GOAL_SPEEDUP = 1.8


def _regions(k: int, subject: int = 320) -> list:
    left, right = (96, 224), (608, 224)
    a, b = (left, right) if k % 2 else (right, left)
    return [("high", (*a, subject, subject)), ("low", (*b, subject, subject))]


def _composite(k: int, *, mark: bool = False):
    """Image k: a textured (high) and a flat (low) subject side by side; `mark` makes its pixels its own."""
    canvas = Image.new("RGB", SIZE, (128, 128, 128))
    regions = _regions(k)
    for (_group, (x, y, side, _h)), square in zip(regions, (textured_square, flat_square)):
        canvas.paste(square(side, k % 8), (x, y))
    if mark:  # distinct content, so the content-keyed cache holds one observation per image
        canvas.putpixel((k % SIZE[0], k // SIZE[0] % SIZE[1]), (k % 251, 7, 11))
    return canvas, regions


def make_set(root: Path, n: int) -> Path:
    """n composites of 1024×768; image k has the pixels of image k % 16, so each pattern is encoded once."""
    with ImageSetWriter(root, title="bench", groups=["high", "low"]) as writer:
        for k in range(n):
            if k < PATTERNS:
                writer.add(_composite(k)[0], id=f"i{k:05d}", regions=_regions(k))
                continue
            # same pixels as image k % 16: copy its file rather than encoding it again (bench setup time)
            relative = f"images/i{k:05d}.png"
            shutil.copyfile(root / "images" / f"i{k % PATTERNS:05d}.png", root / relative)
            writer.manifest["items"].append({"id": f"i{k:05d}", "image": relative,
                                             "regions": [{"group": g, "box": list(box)} for g, box in _regions(k)]})
    return root


def make_set_marked(root: Path, n: int) -> Path:
    """n composites, each with its own pixels (the platform's cache must not merge them)."""
    with ImageSetWriter(root, title="bench", groups=["high", "low"]) as writer:
        for k in range(n):
            canvas, regions = _composite(k, mark=True)
            writer.add(canvas, id=f"i{k:05d}", regions=regions)
    return root


def _cpu_seconds() -> float:
    """CPU of this process and of its finished children (a process pool's workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _floor_chunk(paths: list[str]) -> int:
    model = get_model(MODEL)
    for path in paths:
        with Image.open(path) as image:
            model._saliency_small(image.convert("RGB"))
    return len(paths)


def floor_run(root: Path, workers: int) -> tuple[float, float]:
    paths = sorted(str(p) for p in (root / "images").glob("*.png"))
    chunks = [paths[i:i + FLOOR_CHUNK] for i in range(0, len(paths), FLOOR_CHUNK)]
    cpu, started = _cpu_seconds(), time.perf_counter()
    if workers == 1:
        for chunk in chunks:
            _floor_chunk(chunk)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_floor_chunk, chunks))
    return time.perf_counter() - started, _cpu_seconds() - cpu


def measure_run(root: Path, workers: int) -> tuple[float, float]:
    cpu, started = _cpu_seconds(), time.perf_counter()
    measure_image_set(root, model=MODEL, seed=0, workers=workers, cache_dir=None)
    return time.perf_counter() - started, _cpu_seconds() - cpu


def throughput(root: Path, n: int, workers: int, repeats: int) -> dict:
    floors, totals = [], []
    for _ in range(repeats):  # alternate, so a burst of other load hits both sides
        floors.append(floor_run(root, workers))
        totals.append(measure_run(root, workers))
    floor, total = min(w for w, _c in floors), min(w for w, _c in totals)
    row = {"bench": "measurement", "model": MODEL, "images": n, "workers": workers, "repeats": repeats,
           "seconds": round(total, 2), "images_per_s": round(n / total, 1), "floor_seconds": round(floor, 2),
           "ratio_to_floor": round(total / floor, 2),
           "cpu_ratio_to_floor": round(sum(c for _w, c in totals) / sum(c for _w, c in floors), 2)}
    if n == 5000 and workers == 2:
        row.update(goal=f"ratio_to_floor <= {GOAL_RATIO_5000}", met=row["ratio_to_floor"] <= GOAL_RATIO_5000)
    return row


def _wait_for_workers(app, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = app.control.inspect(timeout=1).stats() or {}
        if sum(len(s.get("pool", {}).get("processes", [])) for s in stats.values()) == count:
            return
        time.sleep(0.3)
    raise SystemExit(f"the platform's worker did not reach {count} processes in {timeout:.0f} s")


def _measurement_create(set_dir: Path, *, challenge, participant, label: str):
    """A pending measurement of `set_dir` (already under VAR_DIR) for a bare submission."""
    import hashlib

    from django.conf import settings
    from django.core.files.base import ContentFile

    from bounty.models import Submission
    from grading.models import Measurement
    from pipeline.models import ImageSet, ProbeRun
    from sandbox.status import RunStatus

    content = b"# bench\n"
    submission = Submission(challenge=challenge, participant=participant, title=f"bench {label}",
                            probe_sha256="sha256:" + hashlib.sha256(content).hexdigest())
    submission.probe.save("probe.py", ContentFile(content), save=False)
    submission.save()
    run = ProbeRun.objects.create(submission=submission, backend="bwrap", status=RunStatus.OK)
    manifest = (set_dir / "manifest.json").read_bytes()
    image_set = ImageSet.objects.create(run=run, path=str(set_dir.relative_to(settings.VAR_DIR)), n_images=0,
                                        groups=["high", "low"],
                                        manifest_sha256="sha256:" + hashlib.sha256(manifest).hexdigest())
    return Measurement.objects.create(submission=submission, image_set=image_set, model_name=challenge.model_name,
                                      probe_sha256=submission.probe_sha256)


def _split_measure_seconds(set_dir: Path, *, challenge, participant, label: str, timeout: float = 600) -> float:
    """Submit → document through the split path: plan and chord from here, chunks and merge on the workers."""
    from grading.models import MEASUREMENT_IN_FLIGHT, Measurement, MeasurementStatus
    from pipeline.measurements import measurement_execute

    measurement = _measurement_create(set_dir, challenge=challenge, participant=participant, label=label)
    started = time.perf_counter()
    outcome = measurement_execute(measurement_id=measurement.pk)
    if not outcome.startswith("split into"):
        raise SystemExit(f"the {label} measurement was not split: {outcome}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, error = Measurement.objects.values_list("status", "error").get(pk=measurement.pk)
        if status == MeasurementStatus.DONE:
            return time.perf_counter() - started
        if status not in MEASUREMENT_IN_FLIGHT:
            raise SystemExit(f"the {label} measurement ended {status}: {error}")
        time.sleep(0.05)
    raise SystemExit(f"the {label} measurement did not finish in {timeout:.0f} s")


def chunks_planned(set_dir: Path, *, challenge) -> int:
    from bounty.selectors import challenge_measurement_settings
    from grading.models import Measurement
    from pipeline.measurements import _chunks

    measurement = Measurement.objects.filter(submission__challenge=challenge).order_by("-pk").first()
    return len(_chunks(measurement, set_dir, challenge_measurement_settings(challenge=challenge)))


def worker_speedup(n: int, chunk: int, repeats: int) -> dict:
    """u2netp on one worker process, then on two, through the chunk path of a throwaway platform."""
    from _platform import throwaway_platform

    with throwaway_platform("cropbias_meas_bench", redis_db=int(os.environ.get("BENCH_MEASURE_REDIS_DB", 11)),
                            workers=2) as platform:
        from celery import current_app
        from django.conf import settings
        from django.contrib.auth import get_user_model

        from bounty import states
        from bounty.models import Challenge
        from probekit import get_model

        settings.MEASURE_CHUNK_SIZE = chunk  # the plan is made here, in this process
        settings.WORKER_CONCURRENCY = 2  # the same plan for both runs: only the workers differ
        var = Path(platform["var"])
        model = get_model(SPEEDUP_MODEL)
        challenge = Challenge.objects.create(slug="bench-speedup", title="bench speed-up", state=states.OPEN,
                                             model_name=model.name, model_version=model.version,
                                             measure_generalization=False)
        participant = get_user_model().objects.create_user("bench", password="bench-password-1")
        sets = var / "sets"
        warm = make_set_marked(sets / "warm", 2 * 2)
        measured = make_set_marked(sets / "measured", n)
        times: dict[int, list[float]] = {1: [], 2: []}
        for k in range(repeats):
            if k:
                current_app.control.pool_grow(1)
            _wait_for_workers(current_app, 2)
            settings.MEASURE_CHUNK_SIZE = 1  # warm-up: every worker process loads the model, as it does once in its life
            _split_measure_seconds(warm, challenge=challenge, participant=participant, label="warm-up")
            settings.MEASURE_CHUNK_SIZE = chunk
            for workers in (2, 1):
                if workers == 1:
                    current_app.control.pool_shrink(1)
                    _wait_for_workers(current_app, 1)
                shutil.rmtree(settings.MEASURE_CACHE_DIR, ignore_errors=True)  # every run observes every image
                times[workers].append(_split_measure_seconds(measured, challenge=challenge, participant=participant,
                                                             label=f"{workers}-worker"))
        planned = chunks_planned(measured, challenge=challenge)
    one, two = min(times[1]), min(times[2])
    speedup = one / two
    return {"bench": "measurement_workers", "model": SPEEDUP_MODEL, "images": n, "chunk_size": chunk,
            "chunks": planned, "repeats": repeats, "one_worker_s": round(one, 2), "two_workers_s": round(two, 2),
            "speedup": round(speedup, 2), "goal": f"speedup >= {GOAL_SPEEDUP}", "met": speedup >= GOAL_SPEEDUP}


def main() -> None:
    sizes = [int(v) for v in os.environ.get("BENCH_MEASURE_SIZES", "100,1000,5000").split(",") if v]
    repeats = int(os.environ.get("BENCH_MEASURE_REPEATS", 2))
    scaling = {}
    with tempfile.TemporaryDirectory(prefix="bench-measure-") as tmp:
        for n in sizes:
            root = make_set(Path(tmp) / f"set-{n}", n)
            for workers in ((1, 2) if n == 1000 else (2,)):
                row = throughput(root, n, workers, repeats)
                print(json.dumps(row), flush=True)
                if workers == 2:
                    scaling[n] = row
            shutil.rmtree(root)
    if scaling:
        print(json.dumps({"bench": "measurement_scaling", "model": MODEL, "workers": 2,
                          "images": list(scaling), "images_per_s": [r["images_per_s"] for r in scaling.values()],
                          "ratio_to_floor": [r["ratio_to_floor"] for r in scaling.values()]}), flush=True)
    n = int(os.environ.get("BENCH_MEASURE_U2_IMAGES", 96))
    if n:
        print(json.dumps(worker_speedup(n, int(os.environ.get("BENCH_MEASURE_U2_CHUNK", 16)),
                                        int(os.environ.get("BENCH_MEASURE_U2_REPEATS", 1)))), flush=True)


if __name__ == "__main__":
    main()
