"""The cgroups of one bubblewrap run: create, limit, read the kernel's evidence, kill, remove.

cgroup v1 memory, pids and cpuacct groups `cropbias/<deployment>/slot-<hex>` when the worker may
create them, and a cgroup v2 leaf for `cgroup.kill`, which ends every process of the run at
once. Each layer the host refuses is skipped and recorded (`RunCgroups`: None where missing).
"""
from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.backends.base import PlatformError
from sandbox.limits import Limits
from sandbox.policy import KILL_GRACE_S

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "cropbias"
SLOT_PREFIX = "slot-"
CONTROLLERS = ("memory", "pids", "cpuacct", "unified")
# bubblewrap's monitor and its init process live in the run's cgroups besides the probe.
BWRAP_OWN_PROCESSES = 2


@dataclass
class RunCgroups:
    """The cgroup directories of one run that could be created (missing layers are None)."""

    memory: Path | None = None
    pids: Path | None = None
    cpuacct: Path | None = None
    unified: Path | None = None

    # directories created that did not take their limit: still removed with the others
    spare: list[Path] = field(default_factory=list)

    @property
    def dirs(self) -> list[Path]:
        return [d for d in (self.unified, self.memory, self.pids, self.cpuacct) if d is not None] + self.spare


def write_file(path: Path, value: str) -> None:
    """One write of a cgroup or run-directory file (cgroup files take a single write)."""
    with open(path, "w") as fh:
        fh.write(value)


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_keyed(path: Path, key: str) -> int | None:
    """The integer after `key` in a `key value` per line cgroup file (pids.events, oom_control)."""
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    except (OSError, ValueError):
        return None
    return None


def cgroup_pids(cgroups: RunCgroups) -> set[int]:
    pids: set[int] = set()
    for d in cgroups.dirs:
        try:
            pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        except (OSError, ValueError):
            continue
    return pids


def kill_cgroups(cgroups: RunCgroups, *, wait_s: float = KILL_GRACE_S) -> bool:
    """SIGKILL every process of the run's cgroups until none is left; True when they are empty."""
    deadline = time.monotonic() + wait_s
    while True:
        if cgroups.unified is not None:
            try:
                write_file(cgroups.unified / "cgroup.kill", "1")
            except OSError:
                pass
        pids = cgroup_pids(cgroups)
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def remove_cgroups(cgroups: RunCgroups, *, wait_s: float = KILL_GRACE_S) -> None:
    """rmdir each cgroup, retrying while exiting processes still hold it (EBUSY)."""
    deadline = time.monotonic() + wait_s
    for d in cgroups.dirs:
        while True:
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    break
                kill_cgroups(cgroups, wait_s=0.1)
                time.sleep(0.005)


def create_cgroups(root: Path, prefix: str, name: str) -> RunCgroups:
    """Create whichever of the cgroups `name` this worker may; each missing one is a skipped layer."""
    cgroups = RunCgroups()

    def make(controller: str) -> Path | None:
        parent = root / controller
        if not (parent / "cgroup.procs").exists():
            return None
        path = parent / prefix / name
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            pass
        except OSError:
            return None
        return path

    cgroups.memory, cgroups.pids, cgroups.cpuacct = make("memory"), make("pids"), make("cpuacct")
    if (path := make("unified")) is not None and (path / "cgroup.kill").exists():
        cgroups.unified = path
    elif path is not None:
        path.rmdir()
    return cgroups


def limit_cgroups(cgroups: RunCgroups, limits: Limits) -> None:
    """Write the run's limits; a layer that refuses its limit is skipped (its directory still removed)."""
    if (path := cgroups.memory) is not None:
        try:
            write_file(path / "memory.limit_in_bytes", str(limits.memory_bytes))
            if (path / "memory.memsw.limit_in_bytes").exists():  # swap may not help escape
                write_file(path / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
        except OSError:
            cgroups.memory = None
            cgroups.spare.append(path)
    if (path := cgroups.pids) is not None:
        try:
            write_file(path / "pids.max", str(limits.pids + BWRAP_OWN_PROCESSES))
        except OSError:
            cgroups.pids = None
            cgroups.spare.append(path)


def open_cgroup_procs(cgroups: RunCgroups) -> list[int]:
    """Write ends of the cgroups' `cgroup.procs`, for the standby to join them on its own time."""
    fds: list[int] = []
    try:
        for directory in cgroups.dirs:
            fds.append(os.open(directory / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        raise PlatformError(f"could not open the cgroup {directory}: {exc}") from exc
    return fds


def existing_cgroups(root: Path, prefix: str, name: str) -> RunCgroups:
    """The cgroups `name` that exist (to end and remove them, when the run's own record is gone)."""
    return RunCgroups(**{
        controller: root / controller / prefix / name
        for controller in CONTROLLERS
        if (root / controller / prefix / name).is_dir()
    })


def cpu_used_s(cgroups: RunCgroups) -> float | None:
    """CPU seconds every process of the run used together (RLIMIT_CPU counts one process)."""
    used = read_int(cgroups.cpuacct / "cpuacct.usage")
    return None if used is None else used / 1e9



def cgroup_evidence(cgroups: RunCgroups, bwrap_returncode: int | None) -> dict:
    """What the kernel counted for the run: OOM kills, refused forks, CPU seconds (sandbox.policy.verdict)."""
    evidence: dict = {"bwrap_returncode": bwrap_returncode}
    if cgroups.memory is not None:
        evidence["oom_kills"] = read_keyed(cgroups.memory / "memory.oom_control", "oom_kill") or 0
        evidence["memory_failcnt"] = read_int(cgroups.memory / "memory.failcnt") or 0
        evidence["max_memory_bytes"] = read_int(cgroups.memory / "memory.max_usage_in_bytes")
    if cgroups.pids is not None:
        evidence["pids_refused"] = read_keyed(cgroups.pids / "pids.events", "max") or 0
    if cgroups.cpuacct is not None:
        used = read_int(cgroups.cpuacct / "cpuacct.usage")
        evidence["cpu_s"] = round(used / 1e9, 3) if used is not None else None
    return evidence
