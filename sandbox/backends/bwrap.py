"""The bubblewrap backend: Linux namespaces, seccomp, cgroups and rlimits, never host root.

Layers of one run, each recorded in the result's `details`:

- bubblewrap (`bwrap`) started as an unprivileged host uid (65534 when the worker is root,
  else the worker's own uid) with every namespace unshared, no capabilities, no new privileges,
  nested user namespaces disabled and a cleared environment;
- the run directory in memory (`ROOT_RUNS_DIR` under /dev/shm, root's own: `_private_root`);
- a read-only view of /usr, the worker's Python runtime (bound at the same path) and probekit
  (at /opt/probekit); the probe at /probe (a private copy, so the caller's directory needs no
  permissions for the sandbox uid); a size-capped /tmp and a private size-capped /dev/shm;
- the output directory on a per-run tmpfs mounted by the worker with size and inode caps,
  bound at /out (a bind mount alone cannot be size-capped);
- a seccomp filter (default allow) refusing sockets, io_uring, ptrace, namespace and mount
  calls, kernel keyrings, BPF, module loading and similar kernel attack surface;
- cgroup v1 memory, pids and cpuacct groups `cropbias/<deployment>/slot-<hex>` when the worker may create
  them, and a cgroup v2 leaf for `cgroup.kill`, which ends every process of the run at once;
  the run's first process (a standby launcher started after the previous run,
  `sandbox.backends.standby`) joins a fresh slot of them before it executes bwrap, so every process of the run is born
  inside them (nothing running is migrated, nothing runs outside them), and the kernel's wait
  for that join is paid between runs;
- rlimits as a second layer: address space, CPU seconds per process, processes, file size,
  open files, no core dumps;
- lifetime: the kernel's real-time timer of bwrap's own process (`alarm`, armed by the standby
  just before exec; it survives exec) is the engine-side wall bound: SIGALRM ends bwrap's monitor,
  outside the sandbox's pid namespace so the probe cannot reach it, and `--die-with-parent`
  takes the sandbox with it; bwrap also dies with the worker (parent-death signal).

Status rules: `sandbox.policy.verdict`, on the watchdog's outcome plus the cgroups' evidence
(OOM kills, refused forks, the run's cpuacct total: RLIMIT_CPU is per process, cpuacct adds up
every process).

bubblewrap reports the probe's exit code on `--json-status-fd` only once it executed the
probe, so a run without that report and without limit evidence failed during sandbox setup:
that raises PlatformError (never the participant's fault) — text a probe prints cannot fake it.

Caveat: RLIMIT_NPROC counts every process of the sandbox uid on the host, and runs share
uid 65534, so when the pids cgroup applies the rlimit is a generous backstop rather than the
per-run cap (see `_rlimits`).
"""
from __future__ import annotations

import atexit
import ctypes
import errno
import functools
import hashlib
import json
import logging
import os
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sandbox.backends.base import PlatformError, RunResult, SandboxBackend
from sandbox.backends.standby import SECCOMP_FD, STATUS_FD, Process, Standby
from sandbox.limits import Limits, MiB
from sandbox.policy import (
    BAD_RUN_ID,
    DENIED_SYSCALLS,
    KILL_GRACE_S,
    MODELS_COPY,
    MODELS_ENV,
    MODELS_MOUNT,
    RUN_ID_RE,
    SANDBOX_ENV,
    SANDBOX_GID,
    SANDBOX_UID,
    Outcome,
    Tail,
    Watchdog,
    deployment_id,
    engine_wall_s,
    libc,
    live_sandbox,
    prepare_run_dir,
    remove_run_dir,
    run_started_at,
    verdict,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A run directory is a handful of small files written and removed per run: on a disk file system
# the journal makes that removal cost milliseconds (more than the rest of the clean-up), in
# memory it is free. /dev/shm is the host's tmpfs; the sandbox never sees it (it has its own).
SHM_DIR = Path("/dev/shm")
ROOT_RUNS_DIR = SHM_DIR / "cropbias-sandbox"
DISK_RUNS_DIR = Path("/var/tmp/cropbias-sandbox")  # where /dev/shm is missing
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "cropbias"
WORKER_FILE = "worker"  # "<pid> <start time in clock ticks>" of the process supervising the run
CGROUP_FILE = "cgroup"  # the name of the run's cgroups (its slot), below the deployment's prefix
SLOT_PREFIX = "slot-"
# bubblewrap's monitor and its init process live in the run's cgroups besides the probe.
BWRAP_OWN_PROCESSES = 2
# RLIMIT_AS headroom over the memory cgroup: the cgroup is the real cap, and virtual size runs
# far ahead of resident memory (thread stacks, malloc arenas, numpy/onnxruntime mappings).
ADDRESS_SPACE_HEADROOM = 1024 * MiB

# Linux clone(2) namespace flags a probe may not use (x86_64: clone's first argument).
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
TIOCSTI, TIOCLINUX = 0x5412, 0x541C

logger = logging.getLogger(__name__)



@dataclass
class _RunCgroups:
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


@functools.cache
def seccomp_filter_bpf() -> bytes:
    """The seccomp BPF program every sandboxed process runs under, built once per process.

    Default action ALLOW; the calls in DENIED_SYSCALLS, clone with a namespace flag and the
    terminal-injection ioctls return EPERM; clone3 returns ENOSYS (its flags sit in memory a
    filter cannot read) so glibc falls back to clone, where the flags are checked.
    Other architectures (i386, x32) are killed by libseccomp's bad-arch action.
    """
    try:
        import pyseccomp as seccomp
    except ImportError:  # the libseccomp project's own binding has the same API
        try:
            import seccomp  # type: ignore[no-redef]
        except ImportError as exc:
            raise PlatformError("no seccomp binding: install pyseccomp (requirements.txt)") from exc
    try:
        filt = seccomp.SyscallFilter(seccomp.ALLOW)
        deny = seccomp.ERRNO(errno.EPERM)
        for name in DENIED_SYSCALLS:
            try:
                filt.add_rule(deny, name)
            except (ValueError, OSError):  # a call this libseccomp or kernel does not know
                continue
        for flag in CLONE_NAMESPACE_FLAGS:
            filt.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        filt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        for request in (TIOCSTI, TIOCLINUX):
            filt.add_rule(deny, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, request))
        with tempfile.TemporaryFile() as fh:
            filt.export_bpf(fh)
            fh.seek(0)
            return fh.read()
    except (OSError, RuntimeError) as exc:
        raise PlatformError(f"could not build the seccomp filter: {exc}") from exc


MS_BIND = 4096
MS_REC = 16384
RUNTIME_DIR = Path("/var/tmp/cropbias-runtime")


def _traversable_by_others(path: Path) -> bool:
    """True when every directory above `path` lets any uid pass (o+x)."""
    for parent in [*reversed(path.parents), path]:
        try:
            if not os.stat(parent).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


@functools.lru_cache(maxsize=8)
def _reachable_source(path: Path) -> Path:
    """A path the sandbox uid can reach that shows `path`'s tree.

    bubblewrap resolves bind sources as the sandbox uid, so a runtime inside a private
    directory (a checkout under /root, say) is bind-mounted once by the root worker under a
    world-traversable directory; the tree's own permissions (a+rX) still apply.
    """
    if _traversable_by_others(path):
        return path
    RUNTIME_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(RUNTIME_DIR, 0o755)
    target = RUNTIME_DIR / hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
    target.mkdir(mode=0o755, exist_ok=True)
    if not os.path.ismount(target):
        if libc().mount(os.fsencode(path), os.fsencode(target), None, MS_BIND | MS_REC, None) != 0:
            err = ctypes.get_errno()
            raise PlatformError(f"cannot expose {path} to the sandbox uid (bind mount: {os.strerror(err)})")
    return target


def _private_root(path: Path) -> None:
    """Create `path` for root only (0711) in a world-writable parent, or refuse one another user made."""
    path.mkdir(mode=0o711, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise PlatformError(f"{path} is not a directory of root's own (created by someone else?): remove it")
    os.chmod(path, 0o711)


def _process_identity(pid: int) -> str:
    """pid and start time: a pid reused by another process does not match."""
    try:
        stat_fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return f"{pid} {stat_fields[19]}"
    except (OSError, IndexError):
        return f"{pid} ?"


def _supervisor_gone(run_dir: Path) -> bool:
    """True when the worker process that supervised this run has died (its run is orphaned)."""
    try:
        recorded = (run_dir / WORKER_FILE).read_text().strip()
    except OSError:
        return False
    pid = int(recorded.split()[0])
    return _process_identity(pid) != recorded


def _parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _kill_process_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_keyed(path: Path, key: str) -> int | None:
    """The integer after `key` in a `key value` per line cgroup file (pids.events, oom_control)."""
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    except (OSError, ValueError):
        return None
    return None


def _cgroup_pids(cgroups: _RunCgroups) -> set[int]:
    pids: set[int] = set()
    for d in cgroups.dirs:
        try:
            pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        except (OSError, ValueError):
            continue
    return pids


def _kill_cgroups(cgroups: _RunCgroups, *, wait_s: float = KILL_GRACE_S) -> bool:
    """SIGKILL every process of the run's cgroups until none is left; True when they are empty."""
    deadline = time.monotonic() + wait_s
    while True:
        if cgroups.unified is not None:
            try:
                _write(cgroups.unified / "cgroup.kill", "1")
            except OSError:
                pass
        pids = _cgroup_pids(cgroups)
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


def _remove_cgroups(cgroups: _RunCgroups, *, wait_s: float = KILL_GRACE_S) -> None:
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
                _kill_cgroups(cgroups, wait_s=0.1)
                time.sleep(0.005)


_standbys: dict[tuple, Standby] = {}
_standbys_lock = threading.Lock()


def _end_standby(standby: Standby) -> None:
    standby.discard()
    _kill_cgroups(standby.cgroups, wait_s=1.0)
    _remove_cgroups(standby.cgroups, wait_s=1.0)


def release_standbys() -> None:
    """End every standby of this process and remove its cgroups (at exit; a test before removing its prefix)."""
    with _standbys_lock:
        standbys = list(_standbys.values())
        _standbys.clear()
    for standby in standbys:
        _end_standby(standby)


def standby_slots() -> set[str]:
    """The slots of this process's standbys (their cgroups are the only ones live between runs)."""
    with _standbys_lock:
        return {standby.slot for standby in _standbys.values()}


def wait_for_standbys(timeout_s: float = 5.0) -> bool:
    """Wait until this process's standbys have joined their cgroups (what an idle worker's time does)."""
    with _standbys_lock:
        standbys = list(_standbys.values())
    return all(standby.wait_ready(timeout_s) for standby in standbys)


atexit.register(release_standbys)


class BubblewrapBackend(SandboxBackend):
    """Runs probes under bubblewrap on this host (see the module docstring for the layers)."""

    name = "bwrap"

    def __init__(
        self,
        *,
        bwrap_path: str | None = None,
        python_prefix: Path | str | None = None,
        probekit_dir: Path | str | None = None,
        runs_dir: Path | str | None = None,
        cgroup_root: Path | str = CGROUP_ROOT,
        cgroup_prefix: str | None = None,
        deployment: str | None = None,
    ):
        self.bwrap_path = bwrap_path or shutil.which("bwrap") or "/usr/bin/bwrap"
        self.python_prefix = Path(python_prefix or sys.prefix)
        self.probekit_dir = Path(probekit_dir) if probekit_dir else PROJECT_ROOT / "probekit"
        self.as_root = os.geteuid() == 0
        self.deployment = deployment or deployment_id()
        if runs_dir is not None:
            self.runs_dir = Path(runs_dir)
        elif self.as_root:
            self.runs_dir = (ROOT_RUNS_DIR if SHM_DIR.is_dir() else DISK_RUNS_DIR) / self.deployment
        else:
            self.runs_dir = Path(tempfile.gettempdir()) / f"cropbias-sandbox-{os.geteuid()}" / self.deployment
        # The default root runs directory sits in a world-writable parent: checked on the first run.
        self._check_runs_root = runs_dir is None and self.as_root
        self.cgroup_root = Path(cgroup_root)
        # Runs live in `<controller>/<cgroup_prefix>/<run_id>`, one prefix per deployment; reap ends only those.
        self.cgroup_prefix = cgroup_prefix or f"{CGROUP_PREFIX}/{self.deployment}"
        # As root the sandbox runs as nobody; otherwise as the (already unprivileged) worker.
        self.uid = SANDBOX_UID if self.as_root else os.geteuid()
        self.gid = SANDBOX_GID if self.as_root else os.getegid()

    # -- SandboxBackend -------------------------------------------------------------------

    def available(self) -> tuple[bool, str]:
        if not (os.path.isfile(self.bwrap_path) and os.access(self.bwrap_path, os.X_OK)):
            return False, f"bubblewrap is not installed ({self.bwrap_path} is missing): apt-get install bubblewrap"
        python = self.python_prefix / "bin" / "python"
        if not os.access(python, os.X_OK):
            return False, f"the sandbox Python {python} is missing"
        return True, ""

    def execute(
        self,
        probe_dir: Path,
        *,
        limits: Limits,
        run_id: str,
        should_cancel: Callable[[], bool] | None = None,
        models_dir: Path | None = None,
    ) -> RunResult:
        if not RUN_ID_RE.match(run_id):
            raise ValueError(BAD_RUN_ID)
        usable, reason = self.available()
        if not usable:
            raise PlatformError(reason)
        bpf = seccomp_filter_bpf()
        if self._check_runs_root:
            _private_root(self.runs_dir.parent)
            self._check_runs_root = False
        # A directory left by an earlier delivery of this run (worker killed) is ended first.
        self._destroy_run(run_id)
        cgroups = _RunCgroups()
        standby: Standby | None = None
        started: list[Process] = []

        def end() -> None:
            if standby is not None and not started:
                standby.discard()
            for proc in started:
                _kill_process_group(proc.pid)
            self._destroy_run(run_id, cgroups)

        with live_sandbox(f"bwrap:{self.runs_dir}/{run_id}", end):
            try:
                run_dir, details = prepare_run_dir(self.runs_dir, run_id, Path(probe_dir), limits,
                                                   as_root=self.as_root, uid=self.uid, gid=self.gid,
                                                   models_dir=models_dir)
                self._write_identity(run_dir)
                standby = self._take_standby()
                cgroups = standby.cgroups
                _write(run_dir / CGROUP_FILE, standby.slot)
                self._limit_cgroups(cgroups, limits)
                details.update(
                    uid=self.uid, seccomp=True, bwrap=self.bwrap_path, deployment=self.deployment, cgroup=standby.slot,
                    cgroup_v1_memory=cgroups.memory is not None, cgroup_v1_pids=cgroups.pids is not None,
                    cgroup_v1_cpuacct=cgroups.cpuacct is not None, cgroup_v2_kill=cgroups.unified is not None,
                )
                outcome = self._supervise(run_dir, limits, standby, bpf, should_cancel, started)
                message = outcome.stderr.text().strip()
                message = message.splitlines()[-1] if message else f"exit status {outcome.evidence.get('bwrap_returncode')}"
                status, error = verdict(outcome, limits, out=run_dir / "out", details=details,
                                        no_exit_status=f"bubblewrap could not start the probe: {message}")
            except BaseException:
                end()
                raise
        details.update(outcome.evidence)
        _remove_cgroups(cgroups)
        self._prepare_standby()

        def cleanup() -> None:
            self._destroy_run(run_id)

        return RunResult(
            status=status, exit_code=outcome.exit_code, wall_s=round(outcome.wall_s, 3),
            stdout_tail=outcome.stdout.text(), stderr_tail=outcome.stderr.text(), error=error,
            output_dir=run_dir / "out", cleanup=cleanup, details=details,
        )

    def reap(self, older_than_s: float) -> list[str]:
        """End this deployment's runs started more than `older_than_s` ago: processes, mounts, files.

        Only its own runs directory and cgroup prefix are looked at, both named by the deployment id.

        A run's age comes from the start time written in its directory; a cgroup with no run
        directory is aged by the cgroup directory's modification time (its creation, for a leaf).
        """
        now = time.time()
        ended: list[str] = []
        seen: set[str] = set()
        for pid in self._orphaned_bwrap_pids():
            try:
                os.kill(pid, signal.SIGKILL)  # its run directory (if any) is ended just below
            except (ProcessLookupError, PermissionError):
                pass
        if self.runs_dir.is_dir():
            for run_dir in self.runs_dir.iterdir():
                run_id = run_dir.name
                seen.update({run_id, self._recorded_cgroup(run_id) or run_id})
                if now - run_started_at(run_dir) > older_than_s or _supervisor_gone(run_dir):
                    self._destroy_run(run_id, sweep=True)
                    ended.append(run_id)
        for controller in ("unified", "memory", "pids", "cpuacct"):
            parent = self.cgroup_root / controller / self.cgroup_prefix
            if not parent.is_dir():
                continue
            for cg in parent.iterdir():
                if not cg.is_dir() or cg.name in seen:
                    continue
                if cg.name.startswith(SLOT_PREFIX) and (cg / "cgroup.procs").read_text().strip():
                    continue  # a live worker's standby: it dies with its worker, and its slot is then empty
                try:
                    age = now - cg.stat().st_mtime
                except OSError:
                    continue
                if age > older_than_s:
                    self._destroy_run(cg.name)
                    seen.add(cg.name)
                    ended.append(cg.name)
        return sorted(ended)

    # -- set-up and tear-down -------------------------------------------------------------

    def _write_identity(self, run_dir: Path) -> None:
        """The supervising worker and the passwd/group files the sandbox sees."""
        _write(run_dir / WORKER_FILE, _process_identity(os.getpid()))
        _write(run_dir / "passwd", f"sandbox:x:{self.uid}:{self.gid}:sandbox:/tmp:/usr/sbin/nologin\n")
        _write(run_dir / "group", f"sandbox:x:{self.gid}:\n")
        os.chmod(run_dir / "passwd", 0o644)
        os.chmod(run_dir / "group", 0o644)

    def _create_cgroups(self, name: str) -> _RunCgroups:
        """Create whichever of the cgroups `name` this worker may; each missing one is a skipped layer."""
        cgroups = _RunCgroups()

        def make(controller: str) -> Path | None:
            parent = self.cgroup_root / controller
            if not (parent / "cgroup.procs").exists():
                return None
            path = parent / self.cgroup_prefix / name
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

    def _limit_cgroups(self, cgroups: _RunCgroups, limits: Limits) -> None:
        """Write the run's limits; a layer that refuses its limit is skipped (its directory still removed)."""
        if (path := cgroups.memory) is not None:
            try:
                _write(path / "memory.limit_in_bytes", str(limits.memory_bytes))
                if (path / "memory.memsw.limit_in_bytes").exists():  # swap may not help escape
                    _write(path / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
            except OSError:
                cgroups.memory = None
                cgroups.spare.append(path)
        if (path := cgroups.pids) is not None:
            try:
                _write(path / "pids.max", str(limits.pids + BWRAP_OWN_PROCESSES))
            except OSError:
                cgroups.pids = None
                cgroups.spare.append(path)

    # -- the standby (sandbox.backends.standby) -------------------------------------------

    def _standby_key(self) -> tuple:
        return (str(self.cgroup_root), self.cgroup_prefix, self.uid, self.gid)

    def _spawn_standby(self) -> Standby:
        slot = f"{SLOT_PREFIX}{secrets.token_hex(8)}"
        cgroups = self._create_cgroups(slot)
        try:
            return Standby.spawn(slot, cgroups, self._open_cgroup_procs(cgroups))
        except BaseException:
            _remove_cgroups(cgroups)
            raise

    def _take_standby(self) -> Standby:
        """The standby prepared after this process's last run, else one started now; never shared."""
        with _standbys_lock:
            standby = _standbys.pop(self._standby_key(), None)
        if standby is not None:
            if standby.alive():
                return standby
            _end_standby(standby)  # reaped, or its thread ended (the parent-death signal follows the thread)
        return self._spawn_standby()

    def _prepare_standby(self) -> None:
        """Start the next run's standby now, between runs, so its wait for the kernel is off a run's path.

        Only from the main thread (a Celery task's): the parent-death signal follows the thread
        that started the process, so a standby started by a thread that ends next would die
        with it, or worse take a later run's bwrap with it. Runs in other threads start theirs.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            standby = self._spawn_standby()
        except (PlatformError, OSError) as exc:
            logger.warning("no standby for the next sandbox (it will start one itself): %s", exc)
            return
        with _standbys_lock:
            previous = _standbys.pop(self._standby_key(), None)
            _standbys[self._standby_key()] = standby
        if previous is not None:
            _end_standby(previous)

    def _orphaned_bwrap_pids(self) -> list[int]:
        """bubblewrap processes of this backend whose run directory is gone or whose supervisor died.

        Matched by the sandbox uid, bwrap as argv[0] and a probe bind from one of our run
        directories: a worker killed while bwrap was still setting up leaves exactly these.
        """
        prefix = os.fsencode(str(self.runs_dir)) + b"/"
        uid_line = f"Uid:\t{self.uid}\t".encode()
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
                run_dir = self.runs_dir / os.fsdecode(run)
                if not run_dir.is_dir() or _supervisor_gone(run_dir):
                    found.append(int(entry.name))
                    break
        return found

    def _stray_sandbox_pids(self, run_id: str) -> list[int]:
        """Sandboxes of the run outside its cgroups: the worker died before releasing them.

        A process counts only if all three hold: it runs as the sandbox uid, it lives in another
        mount namespace than the worker (every process of the host's namespace sees the run's
        output mount too), and one of its mounts is bound from the run's directory.
        """
        own_namespace = os.stat("/proc/self/ns/mnt").st_ino
        marker = f"/{self.runs_dir.name}/{run_id}/".encode()
        uid_line = f"Uid:\t{self.uid}\t{self.uid}\t{self.uid}\t{self.uid}".encode()
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

    def _recorded_cgroup(self, run_id: str) -> str | None:
        """The slot whose cgroups the run lives in, as its directory records (written by the worker only)."""
        try:
            name = (self.runs_dir / run_id / CGROUP_FILE).read_text().strip()
        except OSError:
            return None
        return name if RUN_ID_RE.match(name) else None

    def _destroy_run(self, run_id: str, cgroups: _RunCgroups | None = None, *, sweep: bool = False) -> None:
        """End every process of the run, unmount its output tmpfs, remove its cgroups and files.

        `sweep` also scans /proc for processes outside the cgroups (for `reap`, not every run).
        """
        if sweep:
            for pid in self._stray_sandbox_pids(run_id):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if cgroups is None:
            name = self._recorded_cgroup(run_id) or run_id
            cgroups = _RunCgroups(**{
                controller: self.cgroup_root / controller / self.cgroup_prefix / name
                for controller in ("memory", "pids", "cpuacct", "unified")
                if (self.cgroup_root / controller / self.cgroup_prefix / name).is_dir()
            })
        _kill_cgroups(cgroups)
        _remove_cgroups(cgroups)
        remove_run_dir(self.runs_dir / run_id)

    # -- running --------------------------------------------------------------------------

    def _bwrap_args(self, run_dir: Path, seccomp_fd: int, status_fd: int, limits: Limits) -> list[str]:
        args = [
            self.bwrap_path,
            "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", str(self.uid), "--gid", str(self.gid),
            "--hostname", "sandbox",
            "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv",
            "--ro-bind", "/usr", "/usr",
        ]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            link = Path("/") / name
            if link.is_symlink():  # Debian merged /usr: /lib -> usr/lib
                args += ["--symlink", os.readlink(link), str(link)]
            elif link.is_dir():
                args += ["--ro-bind", str(link), str(link)]
        args += [
            "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--ro-bind-try", "/etc/fonts", "/etc/fonts",
            "--ro-bind-try", "/etc/localtime", "/etc/localtime",
            "--ro-bind", str(run_dir / "passwd"), "/etc/passwd",
            "--ro-bind", str(run_dir / "group"), "/etc/group",
            "--proc", "/proc", "--dev", "/dev",
            # --dev's /dev/shm would be a directory of bwrap's root: give it its own cap.
            "--size", str(limits.shm_bytes), "--tmpfs", "/dev/shm",
            "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
        ]
        prefix = str(self.python_prefix)
        if not (prefix == "/usr" or prefix.startswith("/usr/")):
            source = _reachable_source(self.python_prefix) if self.as_root else self.python_prefix
            args += ["--ro-bind", str(source), prefix]
        if self.probekit_dir.is_dir():
            source = _reachable_source(self.probekit_dir) if self.as_root else self.probekit_dir
            args += ["--ro-bind", str(source), "/opt/probekit"]
        if (run_dir / MODELS_COPY).is_dir():
            args += ["--ro-bind", str(run_dir / MODELS_COPY), MODELS_MOUNT, "--setenv", MODELS_ENV, MODELS_MOUNT]
        args += [
            "--ro-bind", str(run_dir / "probe"), "/probe",
            "--bind", str(run_dir / "out"), "/out",
            # bwrap's root is a tmpfs the sandbox uid owns: make it read-only, not a size-free /tmp.
            "--remount-ro", "/",
            "--chdir", "/out",
            "--seccomp", str(seccomp_fd),
            "--json-status-fd", str(status_fd),
        ]
        for key, value in SANDBOX_ENV.items():
            args += ["--setenv", key, value]
        args += ["--", str(self.python_prefix / "bin" / "python"), "-s", "/probe/probe.py"]
        return args

    def _rlimits(self, limits: Limits, cgroups: _RunCgroups) -> list[tuple[int, int, int]]:
        address_space = limits.memory_bytes + (ADDRESS_SPACE_HEADROOM if cgroups.memory else 0)
        processes = limits.pids + BWRAP_OWN_PROCESSES
        if cgroups.pids is not None:
            # Counted per uid across the host and runs share uid 65534: only a backstop here.
            processes *= 4
        return [
            (resource.RLIMIT_AS, address_space, address_space),
            (resource.RLIMIT_CPU, int(limits.cpu_s), int(limits.cpu_s) + 1),
            (resource.RLIMIT_NPROC, processes, processes),
            (resource.RLIMIT_FSIZE, limits.output_bytes, limits.output_bytes),
            (resource.RLIMIT_NOFILE, 1024, 1024),
            (resource.RLIMIT_CORE, 0, 0),
        ]

    def _open_cgroup_procs(self, cgroups: _RunCgroups) -> list[int]:
        fds: list[int] = []
        try:
            for directory in cgroups.dirs:
                fds.append(os.open(directory / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            raise PlatformError(f"could not open the cgroup {directory}: {exc}") from exc
        return fds

    def _supervise(self, run_dir: Path, limits: Limits, standby: Standby, bpf: bytes,
                   should_cancel: Callable[[], bool] | None, started_procs: list) -> Outcome:
        """Have the standby (already inside the run's cgroups) execute bwrap, and watch it.

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
            proc = standby.launch(argv=self._bwrap_args(run_dir, SECCOMP_FD, STATUS_FD, limits),
                                  rlimits=self._rlimits(limits, cgroups), drop=self.as_root, uid=self.uid,
                                  gid=self.gid, wall_s=engine_wall_s(limits), seccomp_fd=seccomp_fd,
                                  status_w=status_w)
            started_procs.append(proc)
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(seccomp_fd)
            os.close(status_w)
        try:
            return self._watch(proc, status_r, started, limits, cgroups, should_cancel)
        finally:
            os.close(status_r)
            if proc.poll() is None:  # only on an error in the loop itself
                self._kill_run(proc, cgroups)
            proc.stdout.close()
            proc.stderr.close()

    def _kill_run(self, proc: Process, cgroups: _RunCgroups) -> None:
        """Kill bwrap's process group (its init dies with it) and everything in the cgroups."""
        _kill_process_group(proc.pid)
        _kill_cgroups(cgroups)
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _watch(self, proc: Process, status_r: int, started: float,
               limits: Limits, cgroups: _RunCgroups, should_cancel: Callable[[], bool] | None) -> Outcome:
        def cpu_used_s() -> float | None:
            used = _read_int(cgroups.cpuacct / "cpuacct.usage")
            return None if used is None else used / 1e9

        watchdog = Watchdog(limits, started=started, kill=lambda: self._kill_run(proc, cgroups),
                            should_cancel=should_cancel, cpu_used_s=cpu_used_s if cgroups.cpuacct else None)
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
        _kill_cgroups(cgroups)
        for line in bytes(status.buf).decode("utf-8", "replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and "exit-code" in doc:
                outcome.exit_code = int(doc["exit-code"])
        if outcome.killed_status is not None and outcome.exit_code is None:
            outcome.exit_code = proc.returncode if proc.returncode and proc.returncode > 0 else None
        outcome.evidence = self._evidence(cgroups, proc.returncode)
        return outcome

    def _evidence(self, cgroups: _RunCgroups, bwrap_returncode: int | None) -> dict:
        evidence: dict = {"bwrap_returncode": bwrap_returncode}
        if cgroups.memory is not None:
            evidence["oom_kills"] = _read_keyed(cgroups.memory / "memory.oom_control", "oom_kill") or 0
            evidence["memory_failcnt"] = _read_int(cgroups.memory / "memory.failcnt") or 0
            evidence["max_memory_bytes"] = _read_int(cgroups.memory / "memory.max_usage_in_bytes")
        if cgroups.pids is not None:
            evidence["pids_refused"] = _read_keyed(cgroups.pids / "pids.events", "max") or 0
        if cgroups.cpuacct is not None:
            used = _read_int(cgroups.cpuacct / "cpuacct.usage")
            evidence["cpu_s"] = round(used / 1e9, 3) if used is not None else None
        return evidence
