"""Submit → in_review latency of a trivial probe through the real worker, against its floor.

Floor = the same probe run directly in the sandbox plus its measurement, in this process,
in the same run: one floor sample before each submission (the worker idle meanwhile), so both
medians see the same machine; submissions start once the worker answers a ping. The difference is what the flow adds: broker hops, database moves, scoring,
plots. Prints one JSON line: the median beside the goal (GOAL_RATIO × the floor) and, from the
submissions' audit trail, the median time from submit to entering each state (`reached_ms`).
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
GOAL_RATIO = 1.5


def floor_sample(probe: Path, out_dir: Path) -> float:
    """Seconds for the bare run_probe of `probe` and its measurement, in this process."""
    from grading.measurement import measure_image_set
    from sandbox.limits import Limits
    from sandbox.runner import run_probe
    from sandbox.status import RunStatus

    started = time.perf_counter()
    result = run_probe(probe, backend="bwrap", limits=Limits(), out_dir=out_dir)
    assert result.status == RunStatus.OK, result.to_json()
    measure_image_set(result.image_set_path, model="spectral-residual", seed=0)
    return time.perf_counter() - started


def wait_for_worker(timeout_s: float = 120) -> None:
    from celery import current_app

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if current_app.control.ping(timeout=0.5):
            return
    raise SystemExit("no worker answered a ping")


def reached_ms(submission_ids: list) -> dict[str, float]:
    """Median ms from each submission's creation to each state it entered (SubmissionEvent times)."""
    from bounty.models import Submission, SubmissionEvent

    offsets: dict[str, list[float]] = {}
    created = dict(Submission.objects.filter(pk__in=submission_ids).values_list("pk", "created_at"))
    for submission_id, to_state, at in SubmissionEvent.objects.filter(submission_id__in=submission_ids).values_list(
            "submission_id", "to_state", "at"):
        offsets.setdefault(to_state, []).append((at - created[submission_id]).total_seconds() * 1000)
    ordered = sorted(offsets.items(), key=lambda item: statistics.median(item[1]))
    return {state: round(statistics.median(values)) for state, values in ordered}


def submit_and_wait(probe: Path, var: Path) -> tuple[list[float], list[float], list]:
    from django.contrib.auth import get_user_model

    from bounty import services, states
    from bounty.models import Challenge, Submission
    from probekit import get_model

    model = get_model("spectral-residual")
    challenge = Challenge.objects.create(slug="bench", title="bench", state=states.OPEN, model_name=model.name,
                                         model_version=model.version, total_limit=10_000, daily_limit=10_000)
    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    latencies, floors, ids = [], [], []
    floor_sample(probe, var / "floor-warm")  # this process's first run and measurement load what they need
    wait_for_worker()
    for k in range(N):
        floors.append(floor_sample(probe, var / f"floor-{k}"))
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
        ids.append(submission.pk)
    return latencies, floors, ids


def main() -> None:
    with throwaway_platform(os.environ.get("BENCH_FLOW_DB", "cropbias_bench_flow"),
                            redis_db=int(os.environ.get("BENCH_REDIS_DB", 13))) as platform:
        probe = platform["var"] / "trivial_probe.py"
        probe.write_bytes(TRIVIAL_PROBE)
        latencies, floors, ids = submit_and_wait(probe, platform["var"])
        median, floor = statistics.median(latencies), statistics.median(floors)
        ratio = median / floor
        print(json.dumps({"bench": "flow", "submissions": len(latencies), "median_s": round(median, 2),
                          "max_s": round(max(latencies), 2), "floor_s": round(floor, 2),
                          "ratio_to_floor": round(ratio, 2), "goal_ratio": GOAL_RATIO, "met": ratio <= GOAL_RATIO,
                          "reached_ms": reached_ms(ids)}), flush=True)


if __name__ == "__main__":
    main()
