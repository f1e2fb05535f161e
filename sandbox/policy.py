"""What every sandbox backend enforces the same way: the run's clock, its verdict, its lifetime.

- the watchdog (`Watchdog.watch`): reads the run's streams keeping the last `log_bytes` of
  stdout and stderr, and ends the run at the wall clock, on cancellation, past its CPU time
  (when the backend can measure it) or on a log flood;
- the engine-side bound (`engine_wall_s`): each backend also has the kernel or the container
  end the run a little after the wall clock, so a run never outlives its limits when the
  supervisor is starved, stopped or killed;
- the verdict (`verdict`): the limits → status rules (`ok`, `error`, `timeout`,
  `limit_exceeded`) from what the backend observed;
- lifetime (`live_sandbox`): every running sandbox is registered in this process, and SIGTERM,
  SIGINT or interpreter exit end them before the previous handler runs;
- the deployment id (`deployment_id`): in every container label, cgroup path and run directory,
  so the reaper of one deployment never ends another's sandboxes on a shared host.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import hashlib
import logging
import os
import re
import selectors
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from probekit.confirmatory import CONFIRMATORY_ENV, SEED_ENV
from sandbox.backends.base import PlatformError
from sandbox.limits import Limits, MiB
from sandbox.status import RunStatus

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534  # nogroup
STARTED_AT_FILE = "started_at"
LOG_FLOOD_FACTOR = 64
KILL_GRACE_S = 10.0
POLL_INTERVAL_S = 0.25
CANCEL_POLL_INTERVAL_S = 1.0
# The engine-side bound fires this long after the wall clock: the watchdog normally ends the run first.
ENGINE_WALL_MARGIN_S = 5.0
TIMEOUT_PROGRAM = "/usr/bin/timeout"  # coreutils; in the probe image too

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
BAD_RUN_ID = "run_id must be 1-128 characters of letters, digits, '_', '.' or '-', not starting with a symbol"


def check_run_id(run_id: str) -> None:
    """Both backends' guard: a run id names directories, cgroups and containers, so it is checked first."""
    if not RUN_ID_RE.match(run_id):
        raise ValueError(BAD_RUN_ID)
DEPLOYMENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
BAD_DEPLOYMENT_ID = "SANDBOX_DEPLOYMENT_ID must be 1-32 characters of lower-case letters, digits or '-'"

# The target model's view inside the run directory, mounted read-only at /models (PROBEKIT_MODELS_DIR).
MODELS_COPY = "models"
MODELS_MOUNT = "/models"
MODELS_ENV = "PROBEKIT_MODELS_DIR"

# The confirmatory run of a replication: its seed, and no target model (probekit refuses the crop
# helpers under this marker, and the built-in weights are hidden under an empty tmpfs).
PROBEKIT_WEIGHTS = "/opt/probekit/models/weights"


def confirmatory_env(seed: int) -> dict[str, str]:
    """The environment a confirmatory run adds to SANDBOX_ENV."""
    return {SEED_ENV: str(int(seed)), CONFIRMATORY_ENV: "1"}


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


# -- deployment -------------------------------------------------------------------------------

def derive_deployment_id(var_dir: str | os.PathLike) -> str:
    """A short stable id of the deployment whose state lives in `var_dir`."""
    return hashlib.sha256(os.fsencode(os.path.realpath(var_dir))).hexdigest()[:10]


def deployment_id() -> str:
    """This deployment's id: the setting, else SANDBOX_DEPLOYMENT_ID, else derived from VAR_DIR."""
    from django.conf import settings

    value = getattr(settings, "SANDBOX_DEPLOYMENT_ID", None) if settings.configured else None
    value = value or os.environ.get("SANDBOX_DEPLOYMENT_ID") or derive_deployment_id(
        os.environ.get("VAR_DIR", PROJECT_ROOT / "var"))
    return check_deployment_id(value)


def check_deployment_id(value: str) -> str:
    if not DEPLOYMENT_ID_RE.match(value):
        raise ValueError(f"{BAD_DEPLOYMENT_ID}; got {value!r}")
    return value


# -- run directories --------------------------------------------------------------------------

@functools.cache
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount_tmpfs(target: Path, options: str) -> None:
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if libc().mount(b"tmpfs", os.fsencode(target), b"tmpfs", flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Unmount `target` if it is a mount point; lazily when it is busy."""
    if not os.path.ismount(target):
        return
    path = os.fsencode(target)
    if libc().umount2(path, 0) != 0 and libc().umount2(path, MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def prepare_run_dir(runs_dir: Path, run_id: str, probe_dir: Path, limits: Limits, *, as_root: bool,
                    uid: int, gid: int, models_dir: Path | None = None) -> tuple[Path, dict]:
    """The run directory: its start time, a world-readable copy of the probe, the output directory.

    `models_dir` (what the probe may see of the target model, `sandbox.runner.target_model_view`) is
    copied world-readable to `models/`, which the backends mount read-only at /models.

    As root the output directory is a per-run tmpfs with size and inode caps (a bind mount
    cannot be size-capped); otherwise RLIMIT_FSIZE and the usage check cap it.
    """
    if not (probe_dir / "probe.py").is_file():
        raise PlatformError(f"{probe_dir} holds no probe.py")
    runs_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    os.chmod(runs_dir, 0o711)
    run_dir = runs_dir / run_id
    run_dir.mkdir(mode=0o711)
    os.chmod(run_dir, 0o711)  # mkdir's mode is filtered by the umask
    (run_dir / STARTED_AT_FILE).write_text(repr(time.time()))
    copies = [(probe_dir, run_dir / "probe"), *([(models_dir, run_dir / MODELS_COPY)] if models_dir else [])]
    for source, copy in copies:
        shutil.copytree(source, copy, symlinks=True)
        for dirpath, _dirnames, filenames in os.walk(copy):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o644)
    out = run_dir / "out"
    out.mkdir(mode=0o700)
    details: dict = {"output_tmpfs": False}
    if as_root:
        options = f"size={limits.output_bytes},nr_inodes={limits.output_files + 16},mode=0700,uid={uid},gid={gid}"
        try:
            mount_tmpfs(out, options)
        except OSError as exc:
            raise PlatformError(f"could not mount the output tmpfs: {exc}") from exc
        details["output_tmpfs"] = True
    return run_dir, details


def remove_run_dir(run_dir: Path) -> None:
    if run_dir.exists():
        unmount(run_dir / "out")
        shutil.rmtree(run_dir, ignore_errors=True)


def run_started_at(run_dir: Path) -> float:
    """When the run started (its recorded start, else the directory's modification time)."""
    try:
        return float((run_dir / STARTED_AT_FILE).read_text())
    except (OSError, ValueError):
        return run_dir.stat().st_mtime


def engine_wall_s(limits: Limits) -> int:
    """Seconds after which the kernel or the container ends the run whatever its supervisor does."""
    return int(limits.wall_s + ENGINE_WALL_MARGIN_S + 0.999)


# -- the watchdog -----------------------------------------------------------------------------

class Tail:
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
class Outcome:
    """What the supervisor saw; `verdict` turns it into a status."""

    stdout: Tail
    stderr: Tail
    exit_code: int | None = None
    wall_s: float = 0.0
    killed_status: str | None = None
    killed_error: str | None = None
    # backend facts the rules read: oom_kills / oom_killed, pids_refused, cpu_s
    evidence: dict = field(default_factory=dict)


def wall_clock_error(limits: Limits) -> str:
    return f"wall-clock limit of {limits.wall_s:g} s reached"


class Watchdog:
    """The supervisor of one run: its clock, its cancellation, its log caps; kills it once."""

    def __init__(self, limits: Limits, *, started: float, kill: Callable[[], None],
                 should_cancel: Callable[[], bool] | None = None,
                 cpu_used_s: Callable[[], float | None] | None = None):
        self.limits, self.started, self._kill = limits, started, kill
        self.should_cancel, self.cpu_used_s = should_cancel, cpu_used_s
        self.outcome = Outcome(stdout=Tail(limits.log_bytes), stderr=Tail(limits.log_bytes))
        self.deadline = started + limits.wall_s
        self.killed_at: float | None = None

    def end(self, status: str, error: str) -> None:
        """Kill the run, recording why; later calls keep the first reason."""
        if self.killed_at is None:
            self.outcome.killed_status, self.outcome.killed_error = status, error
            self.killed_at = time.monotonic()
        self._kill()

    def time_out(self) -> None:
        self.end(RunStatus.TIMEOUT, wall_clock_error(self.limits))

    def remaining_s(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def watch(self, streams: dict[int, Callable[[bytes], None]], *,
              events: dict[int, Callable[[], None]] | None = None, tick: Callable[[], None] | None = None) -> None:
        """Read `streams` (fd → consumer) until all are closed or the run was killed a grace ago.

        `events` are fds that only signal (an OOM eventfd); `tick` runs after each wait.
        """
        flood_bytes = LOG_FLOOD_FACTOR * self.limits.log_bytes
        next_cancel = self.started + CANCEL_POLL_INTERVAL_S
        sel = selectors.DefaultSelector()
        for fd, consume in streams.items():
            sel.register(fd, selectors.EVENT_READ, consume)
        for fd, on_event in (events or {}).items():
            sel.register(fd, selectors.EVENT_READ, on_event)
        open_streams = set(streams)
        try:
            while open_streams:
                now = time.monotonic()
                if self.killed_at is None:
                    if now >= self.deadline:
                        self.time_out()
                    elif self.should_cancel is not None and now >= next_cancel:
                        next_cancel = now + CANCEL_POLL_INTERVAL_S
                        if self.should_cancel():
                            self.end(RunStatus.ERROR, "cancelled")
                    if self.killed_at is None and self.cpu_used_s is not None:
                        used = self.cpu_used_s()
                        if used is not None and used >= self.limits.cpu_s:
                            self.end(RunStatus.TIMEOUT, f"CPU-time limit of {self.limits.cpu_s} s reached")
                elif now - self.killed_at > KILL_GRACE_S:
                    break  # every process is dead; a stream still open could only be the engine's
                wait = POLL_INTERVAL_S if self.killed_at is not None else min(POLL_INTERVAL_S, self.deadline - now)
                for key, _ in sel.select(max(0.0, wait)):
                    if key.fd not in open_streams:
                        key.data()
                        continue
                    try:
                        chunk = os.read(key.fd, 65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        chunk = b""
                    if not chunk:
                        sel.unregister(key.fd)
                        open_streams.discard(key.fd)
                        continue
                    key.data(chunk)
                    out = self.outcome
                    if self.killed_at is None and out.stdout.total + out.stderr.total > flood_bytes:
                        self.end(RunStatus.LIMIT_EXCEEDED,
                                 f"log size limit reached: more than {mib(flood_bytes)} printed "
                                 f"(the last {mib(self.limits.log_bytes)} of each stream are kept)")
                if tick is not None:
                    tick()
        finally:
            sel.close()
        self.outcome.wall_s = time.monotonic() - self.started


# -- the verdict ------------------------------------------------------------------------------

def mib(n: int) -> str:
    return f"{n / MiB:g} MiB"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def output_usage(root: Path) -> tuple[int, int]:
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


def verdict(outcome: Outcome, limits: Limits, *, out: Path, details: dict, no_exit_status: str) -> tuple[str, str | None]:
    """The status and error of a run, from what its backend observed.

    In order: a kill by the watchdog keeps its reason; a run the engine-side bound ended (it
    lasted the wall clock and has no exit status of its own, or was SIGKILLed) timed out; an
    OOM kill or a MemoryError → memory; no exit status at all → the process limit if a fork
    was refused, else a PlatformError (`no_exit_status`: the sandbox never ran the probe);
    SIGXCPU or a kill past the CPU budget → CPU time; EAGAIN on fork → processes; then the
    output caps, a full disk, and the exit code itself.
    """
    if outcome.killed_status is not None:
        return outcome.killed_status, outcome.killed_error
    ev, code, tail = outcome.evidence, outcome.exit_code, outcome.stderr.text()
    if outcome.wall_s >= limits.wall_s and code in (None, 124, 128 + signal.SIGKILL):
        return RunStatus.TIMEOUT, wall_clock_error(limits)
    failed = code != 0
    if ev.get("oom_kills", 0) > 0 or ev.get("oom_killed") or (failed and code is not None and "MemoryError" in tail):
        return RunStatus.LIMIT_EXCEEDED, f"memory limit of {mib(limits.memory_bytes)} reached"
    if code is None:
        if ev.get("pids_refused", 0) > 0:
            return RunStatus.LIMIT_EXCEEDED, f"process limit of {limits.pids} reached"
        raise PlatformError(no_exit_status)
    cpu_used = ev.get("cpu_s") or 0.0
    if code == 128 + signal.SIGXCPU or (code == 128 + signal.SIGKILL and cpu_used >= limits.cpu_s):
        return RunStatus.TIMEOUT, f"CPU-time limit of {limits.cpu_s} s reached"
    if failed and (ev.get("pids_refused", 0) > 0 or "Resource temporarily unavailable" in tail):
        return RunStatus.LIMIT_EXCEEDED, f"process limit of {limits.pids} reached"
    used_bytes, used_entries = output_usage(out)
    if used_entries > limits.output_files:
        return RunStatus.LIMIT_EXCEEDED, f"output file-count limit of {limits.output_files} reached"
    if used_bytes > limits.output_bytes:
        return RunStatus.LIMIT_EXCEEDED, f"output size limit of {mib(limits.output_bytes)} reached"
    if failed and ("No space left on device" in tail or "File too large" in tail or code == 128 + signal.SIGXFSZ):
        try:
            st = os.statvfs(out)
            inodes_full, blocks_full = st.f_ffree == 0, st.f_bavail == 0
        except OSError:
            inodes_full = blocks_full = False
        if inodes_full and details.get("output_tmpfs"):
            return RunStatus.LIMIT_EXCEEDED, f"output file-count limit of {limits.output_files} reached"
        if blocks_full or "File too large" in tail or code == 128 + signal.SIGXFSZ:
            return RunStatus.LIMIT_EXCEEDED, f"output size limit of {mib(limits.output_bytes)} reached"
        return RunStatus.LIMIT_EXCEEDED, (f"disk limit reached: the output directory holds at most "
                                       f"{mib(limits.output_bytes)}, /tmp at most {mib(limits.tmp_bytes)} "
                                       f"and /dev/shm at most {mib(limits.shm_bytes)}")
    if code == 0:
        return RunStatus.OK, None
    if code > 128:
        return RunStatus.ERROR, f"the probe was killed by {signal_name(code - 128)}"
    return RunStatus.ERROR, f"the probe exited with status {code}"


# -- lifetime ---------------------------------------------------------------------------------

_live: dict[str, Callable[[], None]] = {}
_live_lock = threading.Lock()
_previous_handlers: dict[int, object] = {}
_atexit_registered = False
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def end_live_sandboxes() -> None:
    """End every sandbox this process started and has not finished (each end is idempotent)."""
    with _live_lock:
        ends = list(_live.items())
    for key, end in ends:
        try:
            end()
        except Exception:  # noqa: BLE001 - one failed clean-up must not keep the others running
            logger.exception("could not end sandbox %s", key)


def _on_ending_signal(signum, frame) -> None:
    end_live_sandboxes()
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)  # Celery's warm shutdown, Python's KeyboardInterrupt…
    else:  # the default action: the process ends, as it would have without us
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    """Put the ending handler in front of whatever handles SIGTERM/SIGINT now (main thread only)."""
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(end_live_sandboxes)
        _atexit_registered = True
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set there; a run in a thread relies on atexit and the reaper
    for signum in ENDING_SIGNALS:
        current = signal.getsignal(signum)
        if current is _on_ending_signal or current is None or current == signal.SIG_IGN:
            continue  # ours already, set outside Python, or ignored (the process goes on: so do its runs)
        _previous_handlers[signum] = current
        signal.signal(signum, _on_ending_signal)


@contextlib.contextmanager
def live_sandbox(key: str, end: Callable[[], None]) -> Iterator[None]:
    """While the block runs, a SIGTERM/SIGINT or exit of this process calls `end` first."""
    _install_handlers()
    with _live_lock:
        _live[key] = end
    try:
        yield
    finally:
        with _live_lock:
            _live.pop(key, None)
