"""Sandbox start-up overhead: a no-op probe through BubblewrapBackend vs the bare interpreter.

Three actions, interleaved so all see the same machine (medians of N runs each, in this one process):
the bare interpreter, the floor — bare `bwrap` with every namespace unshared around the same
interpreter — and a full run of the backend (set-up, run, verdict, clean-up, and starting the
next run's standby: sandbox.backends.standby). Between actions the bench waits, untimed, for
that standby to be ready, as an idle worker's time between runs does.
Prints one JSON line {"bench": "sandbox_startup", "bare_ms", "floor_ms", "bwrap_ms", "ratio",
"goal_ratio", "floor_ratio", "met"}; the goal is ratio <= GOAL_RATIO.
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
from sandbox.backends.standby import STANDBYS  # noqa: E402
from sandbox.limits import Limits  # noqa: E402
from sandbox.status import RunStatus  # noqa: E402

GOAL_RATIO = 1.8


def interleaved_medians_ms(actions, n: int, *, between=None) -> list[float]:
    """Median wall time of each action over n runs, alternating them so all see the same machine;
    `between` runs untimed after each action."""
    samples: list[list[float]] = [[] for _ in actions]
    for _ in range(n):
        for action, bucket in zip(actions, samples):
            started = time.perf_counter()
            action()
            bucket.append((time.perf_counter() - started) * 1000)
            if between is not None:
                between()
    return [statistics.median(bucket) for bucket in samples]


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

    def floor() -> None:
        subprocess.run([backend.bwrap_path, "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                        python, "-s", "-c", "pass"], check=True)

    def sandboxed() -> None:
        execution = backend.execute(probe_dir, limits=limits, run_id=f"bench-{uuid.uuid4().hex}")
        execution.cleanup()
        if execution.status != RunStatus.OK:
            raise SystemExit(f"sandboxed no-op run failed: {execution.error}\n{execution.stderr_tail}")

    try:
        sandboxed()  # builds and caches the seccomp filter, warms the page cache
        bare()
        floor()
        # A worker is idle between runs: the next run's standby gets ready then (untimed here), not
        # during the next measurement.
        bare_ms, floor_ms, bwrap_ms = interleaved_medians_ms((bare, floor, sandboxed), args.n,
                                                             between=STANDBYS.wait_ready)
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    ratio = bwrap_ms / bare_ms
    print(json.dumps({"bench": "sandbox_startup", "n": args.n, "bare_ms": round(bare_ms, 2),
                      "floor_ms": round(floor_ms, 2), "bwrap_ms": round(bwrap_ms, 2), "ratio": round(ratio, 2),
                      "goal_ratio": GOAL_RATIO, "floor_ratio": round(floor_ms / bare_ms, 2),
                      "met": ratio <= GOAL_RATIO}))


if __name__ == "__main__":
    main()
