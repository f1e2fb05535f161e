"""Sandbox start-up overhead: a no-op probe through BubblewrapBackend vs the bare interpreter.

Prints one JSON line {"bench": "sandbox_startup", "bare_ms", "bwrap_ms", "ratio"} (medians of
N runs each, measured in this one process); the goal is ratio <= 2.5.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.backends.bwrap import BubblewrapBackend  # noqa: E402
from sandbox.limits import Limits  # noqa: E402


def interleaved_medians_ms(first, second, n: int) -> tuple[float, float]:
    """Median wall time of each action over n runs, alternating them so both see the same machine."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for action, bucket in ((first, samples[0]), (second, samples[1])):
            started = time.perf_counter()
            action()
            bucket.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples[0]), statistics.median(samples[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=30, help="runs of each kind (default 30)")
    args = parser.parse_args()
    backend = BubblewrapBackend()
    python = str(backend.python_prefix / "bin" / "python")
    probe_dir = Path(tempfile.mkdtemp(prefix="cropbias-bench-"))
    (probe_dir / "probe.py").write_text("pass\n")
    limits = Limits(wall_s=30)

    def bare() -> None:
        subprocess.run([python, "-s", "-c", "pass"], check=True)

    def sandboxed() -> None:
        execution = backend.execute(probe_dir, limits=limits, run_id=f"bench-{uuid.uuid4().hex}")
        execution.cleanup()
        if execution.status != "ok":
            raise SystemExit(f"sandboxed no-op run failed: {execution.error}\n{execution.stderr_tail}")

    try:
        sandboxed()  # builds and caches the seccomp filter, warms the page cache
        bare()
        bare_ms, bwrap_ms = interleaved_medians_ms(bare, sandboxed, args.n)
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    print(json.dumps({"bench": "sandbox_startup", "n": args.n, "bare_ms": round(bare_ms, 2),
                      "bwrap_ms": round(bwrap_ms, 2), "ratio": round(bwrap_ms / bare_ms, 2)}))


if __name__ == "__main__":
    main()
