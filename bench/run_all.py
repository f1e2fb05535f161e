"""`make bench`: run every benchmark in bench/, print its figures, write BENCHMARKS.md.

Each bench_*.py prints JSON lines; every figure is a ratio or a rate measured within one run,
so results compare across machines. The whole suite takes 13 to 17 minutes on 2 cores; BENCHMARKS.md
opens with a table of every figure that states a goal (`goal_<field>` or a `goal` sentence, and `met`).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ORDER = ["bench_sandbox_startup.py", "bench_sandbox_docker.py", "bench_models.py", "bench_measurement.py", "bench_leaderboard.py",
         "bench_flow.py"]
PER_BENCH_TIMEOUT_S = 300
# Benches that fill large databases or sets get longer (leaderboard: 100,000 rows; measurement: 5,000 images and u2netp on 1 and 2 workers).
BENCH_TIMEOUT_S = {"bench_leaderboard.py": 600, "bench_measurement.py": 600, "bench_latency.py": 900}


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(next(row for row in Path("/proc/meminfo").read_text().splitlines() if row.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        mem_kib = 0
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def main() -> int:
    benches = [HERE / name for name in ORDER if (HERE / name).exists()]
    benches += sorted(p for p in HERE.glob("bench_*.py") if p.name not in ORDER)
    figures, failures = [], []
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.monotonic()
    for bench in benches:
        print(f"== {bench.name}", flush=True)
        try:
            proc = subprocess.run([sys.executable, str(bench)], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=BENCH_TIMEOUT_S.get(bench.name, PER_BENCH_TIMEOUT_S))
        except subprocess.TimeoutExpired:
            failures.append(f"{bench.name}: timed out after {BENCH_TIMEOUT_S.get(bench.name, PER_BENCH_TIMEOUT_S)} s")
            print(failures[-1], flush=True)
            continue
        for line in proc.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    figures.append(json.loads(line))
                except ValueError:
                    continue
                print(line, flush=True)
        if proc.returncode != 0:
            failures.append(f"{bench.name}: exit {proc.returncode}: {proc.stderr.strip()[-800:]}")
            print(failures[-1], flush=True)
    total = time.monotonic() - started
    write_report(figures, failures, total)
    print(f"== {len(figures)} figures in {total:.0f} s; BENCHMARKS.md written", flush=True)
    return 1 if failures else 0


def write_report(figures: list[dict], failures: list[str], total_s: float) -> None:
    info = machine()
    lines = ["# Benchmarks", "", "Written by `make bench` (bench/run_all.py). Every figure below was measured in one run;",
             "ratios compare two things measured side by side, so they travel across machines better than seconds.", "",
             "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    lines += ["", f"Whole suite: {total_s:.0f} s.", ""]
    lines += goals_section(figures)
    by_bench: dict[str, list[dict]] = {}
    for figure in figures:
        by_bench.setdefault(figure.get("bench", "other"), []).append(figure)
    for name, rows in by_bench.items():
        keys = [k for k in rows[0] if k != "bench"]
        for row in rows[1:]:
            keys += [k for k in row if k != "bench" and k not in keys]
        lines += [f"## {name}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
        lines.append("")
    if failures:
        lines += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))


def goals_section(figures: list[dict]) -> list[str]:
    """One line per figure that states a goal (`goal_<field>` or a `goal` sentence, and `met`)."""
    rows = [f for f in figures if "met" in f]
    if not rows:
        return []
    details = [f for f in rows if f.get("detail") and f["met"]]  # summed up by a figure of their own
    lines = ["## Goals", "", f"{sum(1 for f in rows if f['met'])} of {len(rows)} figures meet their goal"
             f"{f' ({len(details)} detailed ones that do are in their tables below)' if details else ''}.", "",
             "| bench | figure | value | goal | met |", "|---|---|---|---|---|"]
    for row in (f for f in rows if not (f.get("detail") and f["met"])):
        goals = [(k.removeprefix("goal_"), f"{'≥' if k.removeprefix('goal_') in AT_LEAST else '≤'} {v}")
                 for k, v in row.items() if k.startswith("goal_")]
        if isinstance(row.get("goal"), str) and " " in row["goal"]:
            measured, goal = row["goal"].split(" ", 1)
            goals.append((measured, goal))
        labels = ", ".join(f"{k}={v}" for k, v in row.items() if k in LABEL_FIELDS)
        for measured, goal in goals:
            if measured not in row:  # a goal in a unit (`goal_ms`) is for the figure's p95, else its first such field
                named = [k for k in row if (k.endswith(f"_{measured}") or k.startswith(f"{measured}_"))
                         and not k.startswith("goal_")]
                measured = f"p95_{measured}" if f"p95_{measured}" in named else (named or [measured])[0]
            lines.append(f"| {row.get('bench', '')} | {labels} | {row.get(measured, '')} ({measured}) | {goal} | "
                         f"{'yes' if row['met'] else '**no**'} |")
    return lines + [""]


# Fields that say which figure a row is (the rest are measurements); goals that are floors, not ceilings.
LABEL_FIELDS = ("rows", "view", "endpoint", "model", "images", "workers", "backend", "page", "load", "figure")
AT_LEAST = ("speedup", "throughput_per_s", "images_per_s")


if __name__ == "__main__":
    sys.exit(main())
