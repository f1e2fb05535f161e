"""Submit → in_review latency of a trivial probe through the real worker, against its floor.

Floor = the same probe run directly in the sandbox plus its measurement, in this process,
in the same run. The difference is what the flow adds: broker hops, database moves, scoring,
plots. Prints one JSON line.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import TRIVIAL_PROBE, throwaway_platform  # noqa: E402

N = int(os.environ.get("BENCH_FLOW_N", 8))


def floor_seconds(probe: Path, var: Path) -> float:
    from grading.measurement import measure_image_set
    from sandbox.limits import Limits
    from sandbox.runner import run_probe

    times = []
    for k in range(3):
        started = time.perf_counter()
        result = run_probe(probe, backend="bwrap", limits=Limits(), out_dir=var / f"floor-{k}")
        assert result.status == "ok", result.to_json()
        measure_image_set(result.image_set_path, model="spectral-residual", seed=0)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def submit_and_wait(probe: Path) -> list[float]:
    from django.contrib.auth import get_user_model

    from bounty import services, states
    from bounty.models import Challenge, Submission
    from probekit import get_model

    model = get_model("spectral-residual")
    challenge = Challenge.objects.create(slug="bench", title="bench", state=states.OPEN, model_name=model.name,
                                         model_version=model.version, total_limit=10_000, daily_limit=10_000)
    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    latencies = []
    for k in range(N):
        started = time.perf_counter()
        submission = services.submission_create(challenge=challenge, participant=user, title=f"bench {k}",
                                                probe_name="probe.py", probe_content=probe.read_bytes())
        deadline, state = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            state = Submission.objects.values_list("state", flat=True).get(pk=submission.pk)
            if state in (states.IN_REVIEW, states.FAILED, states.PLATFORM_ERROR):
                break
            time.sleep(0.02)
        if state != states.IN_REVIEW:
            raise SystemExit(f"submission {k} ended {state}")
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    with throwaway_platform("cropbias_bench_flow") as platform:
        probe = platform["var"] / "trivial_probe.py"
        probe.write_bytes(TRIVIAL_PROBE)
        floor = floor_seconds(probe, platform["var"])
        latencies = submit_and_wait(probe)
        median = statistics.median(latencies)
        print(json.dumps({"bench": "flow", "submissions": len(latencies), "median_s": round(median, 2),
                          "max_s": round(max(latencies), 2), "floor_s": round(floor, 2),
                          "ratio_to_floor": round(median / floor, 2)}), flush=True)


if __name__ == "__main__":
    main()
