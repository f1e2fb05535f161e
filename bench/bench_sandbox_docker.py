"""Docker-backend start-up: a no-op probe through DockerBackend vs the bare interpreter.

Prints one JSON line {"bench": "sandbox_startup", "backend": "docker", "bare_ms", "docker_ms",
"ratio"} (medians of N runs each, in this one process), beside bench_sandbox_startup.py's bwrap
figure. The engine is DOCKER_HOST when set, else a Podman service this script starts
(scripts/engine.sh) and stops. The probe image is built once beforehand and not timed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.backends.docker import DockerBackend  # noqa: E402
from sandbox.limits import Limits  # noqa: E402
from sandbox.status import RunStatus  # noqa: E402


def median_ms(action, n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def start_engine(directory: Path) -> str:
    env = dict(os.environ, ENGINE_DIR=str(directory))
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "engine.sh")], env=env, capture_output=True,
                          text=True, check=True, timeout=60)
    return proc.stdout.strip().splitlines()[-1].split("=", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=15, help="runs of each kind (default 15)")
    args = parser.parse_args()
    engine_dir = None
    base_url = os.environ.get("DOCKER_HOST")
    if not base_url:
        engine_dir = Path(tempfile.mkdtemp(prefix="cropbias-bench-engine-"))
        base_url = start_engine(engine_dir)
    probe_dir = Path(tempfile.mkdtemp(prefix="cropbias-bench-"))
    (probe_dir / "probe.py").write_text("pass\n")
    backend = DockerBackend(base_url=base_url)
    limits = Limits(wall_s=60)
    python = sys.executable

    def bare() -> None:
        subprocess.run([python, "-s", "-c", "pass"], check=True)

    def contained() -> None:
        execution = backend.execute(probe_dir, limits=limits, run_id=f"bench-{uuid.uuid4().hex}")
        execution.cleanup()
        if execution.status != RunStatus.OK:
            raise SystemExit(f"docker no-op run failed: {execution.error}\n{execution.stderr_tail}")

    try:
        contained()  # builds or finds the probe image, warms the engine
        bare()
        bare_ms = median_ms(bare, args.n)
        docker_ms = median_ms(contained, args.n)
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
        if engine_dir is not None:
            subprocess.run(["bash", str(ROOT / "scripts" / "engine.sh"), "stop"],
                           env=dict(os.environ, ENGINE_DIR=str(engine_dir)), capture_output=True, timeout=60)
            shutil.rmtree(engine_dir, ignore_errors=True)
    print(json.dumps({"bench": "sandbox_startup", "backend": "docker", "n": args.n, "bare_ms": round(bare_ms, 2),
                      "docker_ms": round(docker_ms, 2), "ratio": round(docker_ms / bare_ms, 2)}))


if __name__ == "__main__":
    main()
