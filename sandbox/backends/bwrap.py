"""The bubblewrap backend: Linux namespaces, seccomp, cgroups and rlimits, never host root.

Layers of one run (DESIGN §7), each recorded in `Execution.details`:

- bubblewrap (`bwrap`) started as an unprivileged host uid (65534 when the worker is root,
  else the worker's own uid) with every namespace unshared, no capabilities, no new privileges,
  nested user namespaces disabled and a cleared environment;
- a read-only view of /usr, the worker's Python runtime (bound at the same path) and probekit
  (at /opt/probekit); the probe at /probe (a private copy, so the caller's directory needs no
  permissions for the sandbox uid); a size-capped /tmp;
- the output directory on a per-run tmpfs mounted by the worker with size and inode caps,
  bound at /out (a bind mount alone cannot be size-capped);
- a seccomp filter (default allow) refusing sockets, io_uring, ptrace, namespace and mount
  calls, kernel keyrings, BPF, module loading and similar kernel attack surface;
- cgroup v1 memory, pids and cpuacct groups `cropbias/<run_id>` when the worker may create
  them, and a cgroup v2 leaf for `cgroup.kill`, which ends every process of the run at once;
- rlimits as a second layer: address space, CPU seconds per process, processes, file size,
  open files, no core dumps.

Status rules (`execute`):

- wall clock: at `limits.wall_s` the run is killed → `timeout`;
- CPU time: SIGXCPU from RLIMIT_CPU, or the run's cpuacct total passing `limits.cpu_s`
  (RLIMIT_CPU is per process; cpuacct adds up every process) → `timeout`;
- memory: an OOM kill in the memory cgroup, or a MemoryError on a failed run → `limit_exceeded`;
- processes: the pids cgroup refused a fork, or a fork failed with EAGAIN → `limit_exceeded`;
- output: ENOSPC/EFBIG on a failed run, or more entries/bytes in the output directory than
  allowed → `limit_exceeded`;
- logs: stdout and stderr keep their last `limits.log_bytes` each; a run printing more than
  LOG_FLOOD_FACTOR × log_bytes in all is killed → `limit_exceeded`;
- exit 0 → `ok` (the runner then validates the image set); anything else → `error`.

bubblewrap reports the probe's exit code on `--json-status-fd` only once it executed the
probe, so a run without that report and without limit evidence failed during sandbox setup:
that raises PlatformError (never the participant's fault) — text a probe prints cannot fake it.

Caveat: RLIMIT_NPROC counts every process of the sandbox uid on the host, and runs share
uid 65534, so when the pids cgroup applies the rlimit is a generous backstop rather than the
per-run cap (see `_rlimits`).
"""
from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import json
import os
import re
import resource
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sandbox.backends.base import (
    STATUS_ERROR,
    STATUS_LIMIT_EXCEEDED,
    STATUS_OK,
    STATUS_TIMEOUT,
    Execution,
    PlatformError,
    SandboxBackend,
)
from sandbox.limits import MiB, Limits

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534  # nogroup
ROOT_RUNS_DIR = Path("/var/tmp/cropbias-sandbox")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "cropbias"
STARTED_AT_FILE = "started_at"
WORKER_FILE = "worker"  # "<pid> <start time in clock ticks>" of the process supervising the run
LOG_FLOOD_FACTOR = 64
# bubblewrap keeps a monitor and an init process inside the run's cgroups besides the probe.
BWRAP_OWN_PROCESSES = 2
# RLIMIT_AS headroom over the memory cgroup: the cgroup is the real cap, and virtual size runs
# far ahead of resident memory (thread stacks, malloc arenas, numpy/onnxruntime mappings).
ADDRESS_SPACE_HEADROOM = 1024 * MiB
KILL_GRACE_S = 10.0
POLL_INTERVAL_S = 0.25
CANCEL_POLL_INTERVAL_S = 1.0

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
BAD_RUN_ID = "run_id must be 1-128 characters of letters, digits, '_', '.' or '-', not starting with a symbol"

SANDBOX_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONPATH": "/probe:/opt",
    "PROBE_OUTPUT_DIR": "/out",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    # One thread per library: parallelism comes from processes (and counts against pids).
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
}

# Linux clone(2) namespace flags a probe may not use (x86_64: clone's first argument).
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
DENIED_SYSCALLS = (
    # networking of any family (AF_VSOCK is not isolated by a network namespace); socketpair
    # stays allowed: an anonymous pair reaches nothing outside the run
    "socket",
    # io_uring can open sockets and files without passing through the syscalls filtered here
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "acct", "swapon", "swapoff", "reboot", "syslog", "quotactl", "lookup_dcookie", "vhangup",
    "iopl", "ioperm", "open_by_handle_at", "name_to_handle_at", "uselib",
    "settimeofday", "clock_settime", "clock_adjtime", "sethostname", "setdomainname",
)

MNT_DETACH = 2
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8


class _Tail:
    """The last `limit` bytes of a stream, and how many bytes it carried in all."""

    def __init__(self, limit: int):
        self.limit, self.total, self.buf = limit, 0, bytearray()

    def append(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buf += chunk
        if len(self.buf) > self.limit:
            del self.buf[: len(self.buf) - self.limit]

    def text(self) -> str:
        return bytes(self.buf).decode("utf-8", errors="replace")


@dataclass
class _RunCgroups:
    """The cgroup directories of one run that could be created (missing layers are None)."""

    memory: Path | None = None
    pids: Path | None = None
    cpuacct: Path | None = None
    unified: Path | None = None

    @property
    def dirs(self) -> list[Path]:
        return [d for d in (self.unified, self.memory, self.pids, self.cpuacct) if d is not None]


@dataclass
class _Outcome:
    """What the supervision loop saw; turned into a status by `_classify`."""

    exit_code: int | None
    wall_s: float
    stdout: _Tail
    stderr: _Tail
    killed_status: str | None = None
    killed_error: str | None = None
    evidence: dict = field(default_factory=dict)


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


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(target: Path, options: str) -> None:
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if _libc().mount(b"tmpfs", os.fsencode(target), b"tmpfs", flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {target}: {os.strerror(err)}")


def _unmount(target: Path) -> None:
    """Unmount `target` if it is a mount point; lazily when it is busy."""
    if not os.path.ismount(target):
        return
    path = os.fsencode(target)
    if _libc().umount2(path, 0) != 0 and _libc().umount2(path, MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


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
        if _libc().mount(os.fsencode(path), os.fsencode(target), None, MS_BIND | MS_REC, None) != 0:
            err = ctypes.get_errno()
            raise PlatformError(f"cannot expose {path} to the sandbox uid (bind mount: {os.strerror(err)})")
    return target


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


def _output_usage(root: Path) -> tuple[int, int]:
    """(bytes, entries) below `root`, never following links."""
    total_bytes = entries = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    st = entry.stat(follow_symlinks=False)
                    total_bytes += st.st_size
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total_bytes, entries


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _mib(n: int) -> str:
    return f"{n / MiB:g} MiB"


def output_and_exit_status(code: int, *, failed: bool, tail: str, out: Path, limits: Limits,
                           details: dict) -> tuple[str, str | None]:
    """The last rules of every backend: output caps, a full disk, then the exit code itself.

    Shared by the bubblewrap and Docker backends once each has ruled on its own evidence
    (wall clock, CPU time, memory, processes).
    """
    used_bytes, used_entries = _output_usage(out)
    if used_entries > limits.output_files:
        return STATUS_LIMIT_EXCEEDED, f"output file-count limit of {limits.output_files} reached"
    if used_bytes > limits.output_bytes:
        return STATUS_LIMIT_EXCEEDED, f"output size limit of {_mib(limits.output_bytes)} reached"
    if failed and ("No space left on device" in tail or "File too large" in tail
                   or code == 128 + signal.SIGXFSZ):
        try:
            st = os.statvfs(out)
            inodes_full, blocks_full = st.f_ffree == 0, st.f_bavail == 0
        except OSError:
            inodes_full = blocks_full = False
        if inodes_full and details.get("output_tmpfs"):
            return STATUS_LIMIT_EXCEEDED, f"output file-count limit of {limits.output_files} reached"
        if blocks_full or "File too large" in tail or code == 128 + signal.SIGXFSZ:
            return STATUS_LIMIT_EXCEEDED, f"output size limit of {_mib(limits.output_bytes)} reached"
        return STATUS_LIMIT_EXCEEDED, (f"disk limit reached: the output directory holds at most "
                                       f"{_mib(limits.output_bytes)} and /tmp at most {_mib(limits.tmp_bytes)}")
    if code == 0:
        return STATUS_OK, None
    if code > 128:
        return STATUS_ERROR, f"the probe was killed by {_signal_name(code - 128)}"
    return STATUS_ERROR, f"the probe exited with status {code}"


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
        cgroup_prefix: str = CGROUP_PREFIX,
    ):
        self.bwrap_path = bwrap_path or shutil.which("bwrap") or "/usr/bin/bwrap"
        self.python_prefix = Path(python_prefix or sys.prefix)
        self.probekit_dir = Path(probekit_dir) if probekit_dir else PROJECT_ROOT / "probekit"
        self.as_root = os.geteuid() == 0
        if runs_dir is not None:
            self.runs_dir = Path(runs_dir)
        elif self.as_root:
            self.runs_dir = ROOT_RUNS_DIR
        else:
            self.runs_dir = Path(tempfile.gettempdir()) / f"cropbias-sandbox-{os.geteuid()}"
        self.cgroup_root = Path(cgroup_root)
        # Runs of this backend live in `<controller>/<cgroup_prefix>/<run_id>`; reap ends only those.
        self.cgroup_prefix = cgroup_prefix
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
    ) -> Execution:
        if not RUN_ID_RE.match(run_id):
            raise ValueError(BAD_RUN_ID)
        usable, reason = self.available()
        if not usable:
            raise PlatformError(reason)
        bpf = seccomp_filter_bpf()
        run_dir = self.runs_dir / run_id
        # A directory left by an earlier delivery of this run (worker killed) is ended first.
        self._destroy_run(run_id)
        cgroups = _RunCgroups()
        try:
            details = self._prepare_run_dir(run_dir, Path(probe_dir), limits)
            cgroups = self._create_cgroups(run_id, limits)
            details.update(
                uid=self.uid, seccomp=True, bwrap=self.bwrap_path,
                cgroup_v1_memory=cgroups.memory is not None, cgroup_v1_pids=cgroups.pids is not None,
                cgroup_v1_cpuacct=cgroups.cpuacct is not None, cgroup_v2_kill=cgroups.unified is not None,
            )
            outcome = self._supervise(run_dir, limits, cgroups, bpf, should_cancel)
            status, error = self._classify(outcome, limits, cgroups, run_dir / "out", details)
        except BaseException:
            self._destroy_run(run_id)
            raise
        details.update(outcome.evidence)
        _remove_cgroups(cgroups)

        def cleanup() -> None:
            self._destroy_run(run_id)

        return Execution(
            status=status, exit_code=outcome.exit_code, wall_s=round(outcome.wall_s, 3),
            stdout_tail=outcome.stdout.text(), stderr_tail=outcome.stderr.text(), error=error,
            output_dir=run_dir / "out", cleanup=cleanup, details=details,
        )

    def reap(self, older_than_s: float) -> list[str]:
        """End runs on this host started more than `older_than_s` ago: processes, mounts, files.

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
                seen.add(run_id)
                try:
                    started = float((run_dir / STARTED_AT_FILE).read_text())
                except (OSError, ValueError):
                    started = run_dir.stat().st_mtime
                if now - started > older_than_s or _supervisor_gone(run_dir):
                    self._destroy_run(run_id, sweep=True)
                    ended.append(run_id)
        for controller in ("unified", "memory", "pids", "cpuacct"):
            parent = self.cgroup_root / controller / self.cgroup_prefix
            if not parent.is_dir():
                continue
            for cg in parent.iterdir():
                if not cg.is_dir() or cg.name in seen:
                    continue
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

    def _prepare_run_dir(self, run_dir: Path, probe_dir: Path, limits: Limits) -> dict:
        """Run directory: start time, a private copy of the probe, passwd/group, the output dir."""
        if not (probe_dir / "probe.py").is_file():
            raise PlatformError(f"{probe_dir} holds no probe.py")
        self.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
        os.chmod(self.runs_dir, 0o711)
        run_dir.mkdir(mode=0o711)
        os.chmod(run_dir, 0o711)  # mkdir's mode is filtered by the umask
        _write(run_dir / STARTED_AT_FILE, repr(time.time()))
        _write(run_dir / WORKER_FILE, _process_identity(os.getpid()))
        probe_copy = run_dir / "probe"
        shutil.copytree(probe_dir, probe_copy, symlinks=True)
        for dirpath, dirnames, filenames in os.walk(probe_copy):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o644)
        _write(run_dir / "passwd", f"sandbox:x:{self.uid}:{self.gid}:sandbox:/tmp:/usr/sbin/nologin\n")
        _write(run_dir / "group", f"sandbox:x:{self.gid}:\n")
        os.chmod(run_dir / "passwd", 0o644)
        os.chmod(run_dir / "group", 0o644)
        out = run_dir / "out"
        out.mkdir(mode=0o700)
        details: dict = {"output_tmpfs": False}
        if self.as_root:
            options = (f"size={limits.output_bytes},nr_inodes={limits.output_files + 16},"
                       f"mode=0700,uid={self.uid},gid={self.gid}")
            try:
                _mount_tmpfs(out, options)
                details["output_tmpfs"] = True
            except OSError as exc:
                raise PlatformError(f"could not mount the output tmpfs: {exc}") from exc
        return details

    def _create_cgroups(self, run_id: str, limits: Limits) -> _RunCgroups:
        """Create whichever of the run's cgroups this worker may; each missing one is a skipped layer."""
        cgroups = _RunCgroups()

        def make(controller: str) -> Path | None:
            parent = self.cgroup_root / controller
            if not (parent / "cgroup.procs").exists():
                return None
            path = parent / self.cgroup_prefix / run_id
            try:
                path.mkdir(parents=True)
            except FileExistsError:
                pass
            except OSError:
                return None
            return path

        if (path := make("memory")) is not None:
            try:
                _write(path / "memory.limit_in_bytes", str(limits.memory_bytes))
                if (path / "memory.memsw.limit_in_bytes").exists():  # swap may not help escape
                    _write(path / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
                cgroups.memory = path
            except OSError:
                path.rmdir()
        if (path := make("pids")) is not None:
            try:
                _write(path / "pids.max", str(limits.pids + BWRAP_OWN_PROCESSES))
                cgroups.pids = path
            except OSError:
                path.rmdir()
        cgroups.cpuacct = make("cpuacct")
        if (path := make("unified")) is not None and (path / "cgroup.kill").exists():
            cgroups.unified = path
        elif path is not None:
            path.rmdir()
        return cgroups

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
            cgroups = _RunCgroups(**{
                controller: self.cgroup_root / controller / self.cgroup_prefix / run_id
                for controller in ("memory", "pids", "cpuacct", "unified")
                if (self.cgroup_root / controller / self.cgroup_prefix / run_id).is_dir()
            })
        _kill_cgroups(cgroups)
        _remove_cgroups(cgroups)
        run_dir = self.runs_dir / run_id
        if run_dir.exists():
            _unmount(run_dir / "out")
            shutil.rmtree(run_dir, ignore_errors=True)

    # -- running --------------------------------------------------------------------------

    def _bwrap_args(self, run_dir: Path, seccomp_fd: int, status_fd: int, block_fd: int,
                    limits: Limits) -> list[str]:
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
            "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
        ]
        prefix = str(self.python_prefix)
        if not (prefix == "/usr" or prefix.startswith("/usr/")):
            source = _reachable_source(self.python_prefix) if self.as_root else self.python_prefix
            args += ["--ro-bind", str(source), prefix]
        if self.probekit_dir.is_dir():
            source = _reachable_source(self.probekit_dir) if self.as_root else self.probekit_dir
            args += ["--ro-bind", str(source), "/opt/probekit"]
        args += [
            "--ro-bind", str(run_dir / "probe"), "/probe",
            "--bind", str(run_dir / "out"), "/out",
            # bwrap's root is a tmpfs the sandbox uid owns: make it read-only, not a size-free /tmp.
            "--remount-ro", "/",
            "--chdir", "/out",
            "--seccomp", str(seccomp_fd),
            "--json-status-fd", str(status_fd),
            "--block-fd", str(block_fd),
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

    def _preexec(self, limits: Limits, cgroups: _RunCgroups) -> Callable[[], None]:
        """The child-side set-up between fork and exec: set rlimits, then drop root.

        Everything is computed beforehand; the child only makes system calls.
        """
        rlimits = self._rlimits(limits, cgroups)
        drop = self.as_root
        uid, gid = self.uid, self.gid

        def preexec() -> None:
            for kind, soft, hard in rlimits:
                resource.setrlimit(kind, (soft, hard))
            if drop:
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
                if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
                    raise OSError("could not drop root privileges")

        return preexec

    def _supervise(self, run_dir: Path, limits: Limits, cgroups: _RunCgroups, bpf: bytes,
                   should_cancel: Callable[[], bool] | None) -> _Outcome:
        """Start bwrap, put it in the run's cgroups before the probe starts, and watch it.

        bwrap stops on `--block-fd` after building the sandbox and before it loads seccomp and
        forks the probe; meanwhile the worker moves bwrap's monitor and sandbox process into the
        cgroups (a migration waits for an RCU grace period, ~10 ms, now overlapped with bwrap's
        own set-up), then releases it, so every process of the probe is born inside them.
        bwrap also holds the block pipe's write end: should the worker die before the release,
        the sandbox stays blocked rather than running outside its cgroups (`reap` ends it).
        """
        seccomp_fd = os.memfd_create("cropbias-seccomp", os.MFD_CLOEXEC)
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        block_r, block_w = os.pipe2(os.O_CLOEXEC)
        try:
            os.write(seccomp_fd, bpf)
            os.lseek(seccomp_fd, 0, os.SEEK_SET)
            args = self._bwrap_args(run_dir, seccomp_fd, status_w, block_r, limits)
            started = time.monotonic()
            try:
                proc = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    env={}, cwd="/", pass_fds=(seccomp_fd, status_w, block_r, block_w),
                    start_new_session=True, preexec_fn=self._preexec(limits, cgroups),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                os.close(block_w)
                raise PlatformError(f"could not start bubblewrap as uid {self.uid}: {exc}") from exc
        finally:
            os.close(seccomp_fd)
            os.close(status_w)
            os.close(block_r)
        try:
            try:
                status_head = self._enter_cgroups(proc, status_r, cgroups)
                try:
                    os.write(block_w, b"1")
                except BrokenPipeError:
                    pass  # bwrap failed during set-up; its status and stderr tell why
            finally:
                os.close(block_w)
            return self._watch(proc, status_r, status_head, started, limits, cgroups, should_cancel)
        finally:
            os.close(status_r)
            if proc.poll() is None:  # only on an error in the loop itself
                self._kill_run(proc, cgroups)
            proc.stdout.close()
            proc.stderr.close()

    def _enter_cgroups(self, proc: subprocess.Popen, status_r: int, cgroups: _RunCgroups) -> bytes:
        """Move bwrap's monitor and sandbox process into the run's cgroups; return what was read.

        bwrap writes the sandbox process's pid to the status fd before letting it run. Without
        that line (bwrap failed early) nothing is moved and the run ends as a set-up failure.
        """
        head = b""
        deadline = time.monotonic() + KILL_GRACE_S
        while b"\n" not in head and time.monotonic() < deadline:
            ready, _, _ = select.select([status_r], [], [], POLL_INTERVAL_S)
            if ready:
                chunk = os.read(status_r, 4096)
                if not chunk:
                    break
                head += chunk
        try:
            child_pid = int(json.loads(head.split(b"\n", 1)[0])["child-pid"])
        except (ValueError, KeyError, TypeError):
            return head
        for directory in cgroups.dirs:
            for pid in (child_pid, proc.pid):
                try:
                    _write(directory / "cgroup.procs", str(pid))
                except ProcessLookupError:
                    pass  # bwrap already failed; its status tells why
                except OSError as exc:
                    raise PlatformError(f"could not move the sandbox into {directory}: {exc}") from exc
        return head

    def _kill_run(self, proc: subprocess.Popen, cgroups: _RunCgroups) -> None:
        """Kill bwrap's process group (its init dies with it) and everything in the cgroups."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _kill_cgroups(cgroups)
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _watch(self, proc: subprocess.Popen, status_r: int, status_head: bytes, started: float,
               limits: Limits, cgroups: _RunCgroups, should_cancel: Callable[[], bool] | None) -> _Outcome:
        stdout, stderr, status = _Tail(limits.log_bytes), _Tail(limits.log_bytes), _Tail(4096)
        status.append(status_head)
        flood_bytes = LOG_FLOOD_FACTOR * limits.log_bytes
        outcome = _Outcome(exit_code=None, wall_s=0.0, stdout=stdout, stderr=stderr)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout.fileno(), selectors.EVENT_READ, stdout)
        sel.register(proc.stderr.fileno(), selectors.EVENT_READ, stderr)
        sel.register(status_r, selectors.EVENT_READ, status)
        deadline = started + limits.wall_s
        next_cancel = started + CANCEL_POLL_INTERVAL_S
        killed_at: float | None = None

        def kill(status_: str, error: str) -> None:
            nonlocal killed_at
            outcome.killed_status, outcome.killed_error = status_, error
            killed_at = time.monotonic()
            self._kill_run(proc, cgroups)

        while sel.get_map():
            now = time.monotonic()
            if killed_at is None:
                if now >= deadline:
                    kill(STATUS_TIMEOUT, f"wall-clock limit of {limits.wall_s:g} s reached")
                elif should_cancel is not None and now >= next_cancel:
                    next_cancel = now + CANCEL_POLL_INTERVAL_S
                    if should_cancel():
                        kill(STATUS_ERROR, "cancelled")
                if killed_at is None and cgroups.cpuacct is not None:
                    used = _read_int(cgroups.cpuacct / "cpuacct.usage")
                    if used is not None and used >= limits.cpu_s * 1e9:
                        kill(STATUS_TIMEOUT, f"CPU-time limit of {limits.cpu_s} s reached")
            elif now - killed_at > KILL_GRACE_S:
                break  # every process is dead; a pipe still open could only be ours
            timeout = max(0.0, min(POLL_INTERVAL_S, deadline - now)) if killed_at is None else POLL_INTERVAL_S
            for key, _ in sel.select(timeout):
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                key.data.append(chunk)
                if killed_at is None and stdout.total + stderr.total > flood_bytes:
                    kill(STATUS_LIMIT_EXCEEDED,
                         f"log size limit reached: more than {_mib(flood_bytes)} printed "
                         f"(the last {_mib(limits.log_bytes)} of each stream are kept)")
        sel.close()
        if killed_at is None:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
            except subprocess.TimeoutExpired:
                kill(STATUS_TIMEOUT, f"wall-clock limit of {limits.wall_s:g} s reached")
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

    # -- status ---------------------------------------------------------------------------

    def _classify(self, outcome: _Outcome, limits: Limits, cgroups: _RunCgroups, out: Path,
                  details: dict) -> tuple[str, str | None]:
        if outcome.killed_status is not None:
            return outcome.killed_status, outcome.killed_error
        ev, code, tail = outcome.evidence, outcome.exit_code, outcome.stderr.text()
        failed = code != 0
        memory_error = f"memory limit of {_mib(limits.memory_bytes)} reached"
        if ev.get("oom_kills", 0) > 0 or (failed and code is not None and "MemoryError" in tail):
            return STATUS_LIMIT_EXCEEDED, memory_error
        if code is None:
            if ev.get("pids_refused", 0) > 0:
                return STATUS_LIMIT_EXCEEDED, f"process limit of {limits.pids} reached"
            message = tail.strip().splitlines()[-1] if tail.strip() else f"exit status {ev.get('bwrap_returncode')}"
            raise PlatformError(f"bubblewrap could not start the probe: {message}")
        cpu_used = ev.get("cpu_s") or 0.0
        if code == 128 + signal.SIGXCPU or (code == 128 + signal.SIGKILL and cpu_used >= limits.cpu_s):
            return STATUS_TIMEOUT, f"CPU-time limit of {limits.cpu_s} s reached"
        if failed and (ev.get("pids_refused", 0) > 0 or "Resource temporarily unavailable" in tail):
            return STATUS_LIMIT_EXCEEDED, f"process limit of {limits.pids} reached"
        return output_and_exit_status(code, failed=failed, tail=tail, out=out, limits=limits, details=details)
