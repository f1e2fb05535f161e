"""A short probe's wait while big measurements run: submit → in_review busy ÷ the same idle, in one run.

A throwaway platform with two worker slots measures on u2netp with the production chunk settings
(`MEASURE_CHUNK_SIZE` 200, `MEASURE_CHUNK_TARGET_S` 10). First a 24-image probe alone (idle, after
one warm-up submission that also gives the platform the model's speed); then two participants'
big probes, and once both are measuring, a third participant's 24-image probe. Prints one JSON line:
both latencies, the ratio (goal ≤ 3), and how long the short probe waited to start running while
the big ones measured (goal ≤ 30 s).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import throwaway_platform  # noqa: E402

GOAL_RATIO = 3.0
GOAL_START_S = 30.0
BIG_IMAGES = int(os.environ.get("BENCH_LATENCY_BIG", 400))

PROBE = '''
from PIL import Image, ImageDraw
import random
from probekit import ImageSetWriter
rng = random.Random({seed})
with ImageSetWriter(groups=["a", "b"], title="latency") as out:
    for k in range({n}):
        image = Image.new("RGB", (160, 80), (128, 128, 128))
        draw = ImageDraw.Draw(image)
        for _ in range(40):
            x, y = rng.randrange(160), rng.randrange(80)
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=rng.choice([(0, 0, 0), (255, 255, 255)]))
        out.add(image, id=f"i{{k}}", regions=[("a", (0, 0, 80, 80)), ("b", (80, 0, 80, 80))])
'''


def _submit(challenge, user, n: int, seed: int):
    from bounty import services

    source = PROBE.format(n=n, seed=seed).encode()
    return services.submission_create(challenge=challenge, participant=user, title=f"{n} images",
                                      probe_name="probe.py", probe_content=source)


def _state(submission) -> str:
    from bounty.models import Submission

    return Submission.objects.values_list("state", flat=True).get(pk=submission.pk)


def _until(predicate, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout_s} s waiting for {what}")


def _short_probe(challenge, user, seed: int) -> tuple[float, float]:
    """(seconds to running, seconds to in_review) of a 24-image probe."""
    from bounty import states

    started = time.monotonic()
    submission = _submit(challenge, user, 24, seed)
    to_run = _until(lambda: _state(submission) not in (states.SUBMITTED, states.QUEUED), 600, "the run to start")
    _until(lambda: _state(submission) in (states.IN_REVIEW, states.FAILED, states.PLATFORM_ERROR), 600,
           "the short probe to be measured")
    if _state(submission) != states.IN_REVIEW:
        raise SystemExit(f"the short probe ended {_state(submission)}")
    return to_run, time.monotonic() - started


def main() -> None:
    env = {"MEASURE_CHUNK_SIZE": "200", "MEASURE_CHUNK_TARGET_S": "10", "MEASURE_SPLIT_MIN_S": "45"}
    with throwaway_platform(os.environ.get("BENCH_LATENCY_DB", "cropbias_bench_latency"),
                            redis_db=int(os.environ.get("BENCH_REDIS_DB", 12)), workers=2, env=env):
        from django.contrib.auth import get_user_model

        from bounty import states
        from bounty.models import Challenge
        from grading.models import Measurement
        from probekit import get_model

        model = get_model("u2netp")
        challenge = Challenge.objects.create(slug="latency", title="latency", state=states.OPEN, model_name=model.name,
                                             model_version=model.version, total_limit=10_000, daily_limit=10_000)
        users = [get_user_model().objects.create_user(f"p{k}", password="bench-password-1") for k in range(4)]
        _short_probe(challenge, users[0], seed=99)  # warm-up: the worker loads what it needs
        _idle_start, idle = _short_probe(challenge, users[0], seed=1)
        big = [_submit(challenge, users[1], BIG_IMAGES, 2), _submit(challenge, users[2], BIG_IMAGES, 3)]
        _until(lambda: all(Measurement.objects.filter(submission=s, progress_done__gt=0).exists() for s in big),
               600, "both big measurements to be measuring")
        busy_start, busy = _short_probe(challenge, users[3], seed=4)
        still_measuring = sum(_state(s) == states.MEASURING for s in big)
        ratio = busy / idle
        print(json.dumps({"bench": "latency", "model": "u2netp", "big_images": BIG_IMAGES, "idle_s": round(idle, 1),
                          "busy_s": round(busy, 1), "busy_start_s": round(busy_start, 1),
                          "big_still_measuring": still_measuring, "ratio": round(ratio, 2),
                          "goal_ratio": GOAL_RATIO, "goal_start_s": GOAL_START_S,
                          "met": ratio <= GOAL_RATIO and busy_start <= GOAL_START_S}), flush=True)


if __name__ == "__main__":
    main()
