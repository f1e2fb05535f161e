"""Supervision of a bubblewrap run: start it from its standby, watch it, and find what a dead
worker left behind.

The watch itself (limits, cancel, output tails) is `sandbox.policy.Watchdog`; the cgroups'
evidence (`sandbox.backends.cgroups`) goes with the outcome to `sandbox.policy.verdict`. A run
directory records the worker that supervises it (`WORKER_FILE`: pid and start time), so `reap`
tells a dead supervisor's run from a live one.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

from sandbox.backends.cgroups import RunCgroups, cgroup_evidence, cpu_used_s, kill_cgroups
from sandbox.backends.standby import Process, Standby
from sandbox.limits import Limits
from sandbox.policy import KILL_GRACE_S, Outcome, Tail, Watchdog, engine_wall_s

WORKER_FILE = "worker"  # "<pid> <start time in clock ticks>" of the process supervising the run


def process_identity(pid: int) -> str:
    """pid and start time: a pid reused by another process does not match."""
    try:
        stat_fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return f"{pid} {stat_fields[19]}"
    except (OSError, IndexError):
        return f"{pid} ?"


def supervisor_gone(run_dir: Path) -> bool:
    """True when the worker process that supervised this run has died (its run is orphaned)."""
    try:
        recorded = (run_dir / WORKER_FILE).read_text().strip()
    except OSError:
        return False
    pid = int(recorded.split()[0])
    return process_identity(pid) != recorded


def kill_process_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def orphaned_bwrap_pids(runs_dir: Path, uid: int) -> list[int]:
    """bubblewrap processes of this backend whose run directory is gone or whose supervisor died.

    Matched by the sandbox uid, bwrap as argv[0] and a probe bind from one of our run
    directories: a worker killed while bwrap was still setting up leaves exactly these.
    """
    prefix = os.fsencode(str(runs_dir)) + b"/"
    uid_line = f"Uid:\t{uid}\t".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
            if not argv or os.path.basename(argv[0]) != b"bwrap":
                continue
            with open(f"/proc/{entry.name}/status", "rb") as fh:
                if uid_line not in fh.read():
                    continue
        except OSError:
            continue
        runs = {arg[len(prefix):].split(b"/")[0] for arg in argv if arg.startswith(prefix)}
        for run in runs:
            run_dir = runs_dir / os.fsdecode(run)
            if not run_dir.is_dir() or supervisor_gone(run_dir):
                found.append(int(entry.name))
                break
    return found


def stray_sandbox_pids(runs_dir: Path, uid: int, run_id: str) -> list[int]:
    """Sandboxes of the run outside its cgroups: the worker died before releasing them.

    A process counts only if all three hold: it runs as the sandbox uid, it lives in another
    mount namespace than the worker (every process of the host's namespace sees the run's
    output mount too), and one of its mounts is bound from the run's directory.
    """
    own_namespace = os.stat("/proc/self/ns/mnt").st_ino
    marker = f"/{runs_dir.name}/{run_id}/".encode()
    uid_line = f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in (1, os.getpid()):
            continue
        try:
            if os.stat(f"/proc/{entry.name}/ns/mnt").st_ino == own_namespace:
                continue
            with open(f"/proc/{entry.name}/status", "rb") as fh:
                if uid_line not in fh.read():
                    continue
            with open(f"/proc/{entry.name}/mountinfo", "rb") as fh:
                roots = [line.split(b" ")[3] for line in fh.read().splitlines() if line.count(b" ") > 4]
        except (OSError, IndexError):
            continue
        if any(marker in root + b"/" for root in roots):
            found.append(int(entry.name))
    return found


def supervise(standby: Standby, *, argv: list[str], rlimits: list[tuple[int, int, int]], limits: Limits, drop: bool,
              uid: int, gid: int, bpf: bytes, should_cancel: Callable[[], bool] | None,
              started_procs: list) -> Outcome:
    """Have the standby (already inside the run's cgroups) execute bwrap (`argv`), and watch it.

    The standby joined the cgroups before it can execute anything, so no process of the run
    ever lives outside them and nothing running is migrated; should the join have failed, it
    reports why and bwrap never starts.
    """
    cgroups = standby.cgroups
    seccomp_fd = os.memfd_create("cropbias-seccomp", os.MFD_CLOEXEC)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    try:
        os.write(seccomp_fd, bpf)
        os.lseek(seccomp_fd, 0, os.SEEK_SET)
        started = time.monotonic()
        proc = standby.launch(argv=argv, rlimits=rlimits, drop=drop, uid=uid, gid=gid, wall_s=engine_wall_s(limits),
                              seccomp_fd=seccomp_fd, status_w=status_w)
        started_procs.append(proc)
    except BaseException:
        os.close(status_r)
        raise
    finally:
        os.close(seccomp_fd)
        os.close(status_w)
    try:
        return _watch(proc, status_r, started, limits, cgroups, should_cancel)
    finally:
        os.close(status_r)
        if proc.poll() is None:  # only on an error in the loop itself
            kill_run(proc, cgroups)
        proc.stdout.close()
        proc.stderr.close()


def kill_run(proc: Process, cgroups: RunCgroups) -> None:
    """Kill bwrap's process group (its init dies with it) and everything in the cgroups."""
    kill_process_group(proc.pid)
    kill_cgroups(cgroups)
    try:
        proc.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _watch(proc: Process, status_r: int, started: float,
           limits: Limits, cgroups: RunCgroups, should_cancel: Callable[[], bool] | None) -> Outcome:
    """Read the run's streams until it ends or the watchdog ends it; then its exit code and evidence."""
    watchdog = Watchdog(limits, started=started, kill=lambda: kill_run(proc, cgroups),
                        should_cancel=should_cancel, cpu_used_s=(lambda: cpu_used_s(cgroups)) if cgroups.cpuacct else None)
    outcome, status = watchdog.outcome, Tail(4096)
    watchdog.watch({proc.stdout.fileno(): outcome.stdout.append, proc.stderr.fileno(): outcome.stderr.append,
                    status_r: status.append})
    if watchdog.killed_at is None:
        try:
            proc.wait(timeout=watchdog.remaining_s() + 1.0)
        except subprocess.TimeoutExpired:
            watchdog.time_out()
    outcome.wall_s = time.monotonic() - started
    # Nothing of the run may outlive it (bwrap's pid namespace already took its processes).
    kill_cgroups(cgroups)
    for line in bytes(status.buf).decode("utf-8", "replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "exit-code" in doc:
            outcome.exit_code = int(doc["exit-code"])
    if outcome.killed_status is not None and outcome.exit_code is None:
        outcome.exit_code = proc.returncode if proc.returncode and proc.returncode > 0 else None
    outcome.evidence = cgroup_evidence(cgroups, proc.returncode)
    return outcome
