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

The pieces, one module each: the seccomp filter (`sandbox.backends.seccomp`), the cgroups
(`sandbox.backends.cgroups`), the standby and this process's pool of them
(`sandbox.backends.standby`), supervision and what a dead worker left (`sandbox.backends.
supervision`); this module holds the backend itself: the run directory, bubblewrap's arguments,
the rlimits, reaping. The run-id guard (`sandbox.policy.check_run_id`) and the result
(`RunResult.finished`) are shared with the Docker backend.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import resource
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from sandbox.backends.base import PlatformError, RunResult, SandboxBackend
from sandbox.backends.cgroups import (
    BWRAP_OWN_PROCESSES,
    CGROUP_PREFIX,
    CGROUP_ROOT,
    CONTROLLERS,
    SLOT_PREFIX,
    RunCgroups,
    create_cgroups,
    existing_cgroups,
    kill_cgroups,
    limit_cgroups,
    open_cgroup_procs,
    remove_cgroups,
    write_file,
)
from sandbox.backends.seccomp import seccomp_filter_bpf
from sandbox.backends.standby import SECCOMP_FD, STANDBYS, STATUS_FD, Process, Standby, StandbyPool
from sandbox.backends.supervision import (
    WORKER_FILE,
    kill_process_group,
    orphaned_bwrap_pids,
    process_identity,
    stray_sandbox_pids,
    supervise,
    supervisor_gone,
)
from sandbox.limits import Limits, MiB
from sandbox.policy import (
    CONFIRMATORY_ENV,
    MODELS_COPY,
    MODELS_ENV,
    MODELS_MOUNT,
    PROBEKIT_WEIGHTS,
    RUN_ID_RE,
    SANDBOX_ENV,
    SANDBOX_GID,
    SANDBOX_UID,
    check_run_id,
    deployment_id,
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
CGROUP_FILE = "cgroup"  # the name of the run's cgroups (its slot), below the deployment's prefix
# RLIMIT_AS headroom over the memory cgroup: the cgroup is the real cap, and virtual size runs
# far ahead of resident memory (thread stacks, malloc arenas, numpy/onnxruntime mappings).
ADDRESS_SPACE_HEADROOM = 1024 * MiB


logger = logging.getLogger(__name__)


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
        standbys: StandbyPool = STANDBYS,
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
        self.standbys = standbys

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
        env: dict[str, str] | None = None,
    ) -> RunResult:
        check_run_id(run_id)
        usable, reason = self.available()
        if not usable:
            raise PlatformError(reason)
        bpf = seccomp_filter_bpf()
        if self._check_runs_root:
            _private_root(self.runs_dir.parent)
            self._check_runs_root = False
        # A directory left by an earlier delivery of this run (worker killed) is ended first.
        self._destroy_run(run_id)
        cgroups = RunCgroups()
        standby: Standby | None = None
        started: list[Process] = []

        def end() -> None:
            if standby is not None and not started:
                standby.discard()
            for proc in started:
                kill_process_group(proc.pid)
            self._destroy_run(run_id, cgroups)

        with live_sandbox(f"bwrap:{self.runs_dir}/{run_id}", end):
            try:
                run_dir, details = prepare_run_dir(self.runs_dir, run_id, Path(probe_dir), limits,
                                                   as_root=self.as_root, uid=self.uid, gid=self.gid,
                                                   models_dir=models_dir)
                self._write_identity(run_dir)
                standby = self.standbys.take(self._standby_key(), self._spawn_standby)
                cgroups = standby.cgroups
                write_file(run_dir / CGROUP_FILE, standby.slot)
                limit_cgroups(cgroups, limits)
                details.update(
                    uid=self.uid, seccomp=True, bwrap=self.bwrap_path, deployment=self.deployment, cgroup=standby.slot,
                    cgroup_v1_memory=cgroups.memory is not None, cgroup_v1_pids=cgroups.pids is not None,
                    cgroup_v1_cpuacct=cgroups.cpuacct is not None, cgroup_v2_kill=cgroups.unified is not None,
                )
                outcome = supervise(standby, argv=self._bwrap_args(run_dir, SECCOMP_FD, STATUS_FD, limits,
                                                                           env=env),
                                    rlimits=self._rlimits(limits, cgroups), limits=limits, drop=self.as_root,
                                    uid=self.uid, gid=self.gid, bpf=bpf, should_cancel=should_cancel,
                                    started_procs=started)
                message = outcome.stderr.text().strip()
                message = message.splitlines()[-1] if message else f"exit status {outcome.evidence.get('bwrap_returncode')}"
                status, error = verdict(outcome, limits, out=run_dir / "out", details=details,
                                        no_exit_status=f"bubblewrap could not start the probe: {message}")
            except BaseException:
                end()
                raise
        remove_cgroups(cgroups)
        self._prepare_standby()
        return RunResult.finished(outcome, status=status, error=error, output_dir=run_dir / "out", details=details,
                                  cleanup=lambda: self._destroy_run(run_id))

    def reap(self, older_than_s: float) -> list[str]:
        """End this deployment's runs started more than `older_than_s` ago: processes, mounts, files.

        Only its own runs directory and cgroup prefix are looked at, both named by the deployment id.

        A run's age comes from the start time written in its directory; a cgroup with no run
        directory is aged by the cgroup directory's modification time (its creation, for a leaf).
        """
        now = time.time()
        ended: list[str] = []
        seen: set[str] = set()
        for pid in orphaned_bwrap_pids(self.runs_dir, self.uid):
            try:
                os.kill(pid, signal.SIGKILL)  # its run directory (if any) is ended just below
            except (ProcessLookupError, PermissionError):
                pass
        if self.runs_dir.is_dir():
            for run_dir in self.runs_dir.iterdir():
                run_id = run_dir.name
                seen.update({run_id, self._recorded_cgroup(run_id) or run_id})
                if now - run_started_at(run_dir) > older_than_s or supervisor_gone(run_dir):
                    self._destroy_run(run_id, sweep=True)
                    ended.append(run_id)
        for controller in CONTROLLERS:
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
        write_file(run_dir / WORKER_FILE, process_identity(os.getpid()))
        write_file(run_dir / "passwd", f"sandbox:x:{self.uid}:{self.gid}:sandbox:/tmp:/usr/sbin/nologin\n")
        write_file(run_dir / "group", f"sandbox:x:{self.gid}:\n")
        os.chmod(run_dir / "passwd", 0o644)
        os.chmod(run_dir / "group", 0o644)

    # -- the standby (sandbox.backends.standby) -------------------------------------------

    def _standby_key(self) -> tuple:
        return (str(self.cgroup_root), self.cgroup_prefix, self.uid, self.gid)

    def _spawn_standby(self) -> Standby:
        slot = f"{SLOT_PREFIX}{secrets.token_hex(8)}"
        cgroups = create_cgroups(self.cgroup_root, self.cgroup_prefix, slot)
        try:
            return Standby.spawn(slot, cgroups, open_cgroup_procs(cgroups))
        except BaseException:
            remove_cgroups(cgroups)
            raise

    def _prepare_standby(self) -> None:
        """Start the next run's standby between runs (`StandbyPool.prepare`; from the main thread only)."""
        try:
            self.standbys.prepare(self._standby_key(), self._spawn_standby)
        except (PlatformError, OSError) as exc:
            logger.warning("no standby for the next sandbox (it will start one itself): %s", exc)

    def _recorded_cgroup(self, run_id: str) -> str | None:
        """The slot whose cgroups the run lives in, as its directory records (written by the worker only)."""
        try:
            name = (self.runs_dir / run_id / CGROUP_FILE).read_text().strip()
        except OSError:
            return None
        return name if RUN_ID_RE.match(name) else None

    def _destroy_run(self, run_id: str, cgroups: RunCgroups | None = None, *, sweep: bool = False) -> None:
        """End every process of the run, unmount its output tmpfs, remove its cgroups and files.

        `sweep` also scans /proc for processes outside the cgroups (for `reap`, not every run).
        """
        if sweep:
            for pid in stray_sandbox_pids(self.runs_dir, self.uid, run_id):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if cgroups is None:
            name = self._recorded_cgroup(run_id) or run_id
            cgroups = existing_cgroups(self.cgroup_root, self.cgroup_prefix, name)
        kill_cgroups(cgroups)
        remove_cgroups(cgroups)
        remove_run_dir(self.runs_dir / run_id)

    # -- running --------------------------------------------------------------------------

    def _bwrap_args(self, run_dir: Path, seccomp_fd: int, status_fd: int, limits: Limits,
                    env: dict[str, str] | None = None) -> list[str]:
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
            if (env or {}).get(CONFIRMATORY_ENV) and (self.probekit_dir / "models" / "weights").is_dir():
                args += ["--size", "4096", "--tmpfs", PROBEKIT_WEIGHTS]  # no target model in a confirmatory run
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
        for key, value in {**SANDBOX_ENV, **(env or {})}.items():
            args += ["--setenv", key, value]
        args += ["--", str(self.python_prefix / "bin" / "python"), "-s", "/probe/probe.py"]
        return args

    def _rlimits(self, limits: Limits, cgroups: RunCgroups) -> list[tuple[int, int, int]]:
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


