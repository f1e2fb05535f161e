"""The Docker-API backend: each probe in a locked-down container on Docker, Podman or gVisor.

Layers of one run (DESIGN §7), the same contract as bubblewrap (`sandbox.backends.bwrap`):

- the probe image (`sandbox.probe_image`, or `SANDBOX_DOCKER_IMAGE` built from
  Dockerfile.probe) with a read-only root filesystem, no network (`network_mode="none"`),
  uid/gid 65534, every capability dropped, no new privileges and the engine's default seccomp
  profile; `SANDBOX_DOCKER_RUNTIME=runsc` runs it under gVisor;
- memory with equal memory+swap, a pids limit, one CPU, and rlimits always passed (CPU seconds,
  open files, processes, file size, no core dumps): an engine's own defaults may not apply;
- `init=True`, so a reaper is PID 1 and the probe's exit ends every process of the container;
- the probe at /probe (a private, world-readable copy, bound read-only); a size-capped /tmp;
  the output directory at /out on a per-run tmpfs the worker mounts with size and inode caps
  and binds in, exactly as bwrap does: a container's own tmpfs vanishes with its last process,
  so it could not be read once the probe exited, and Podman refuses its `nr_inodes` option;
- stdout/stderr read from an attach stream opened before start, keeping the last
  `limits.log_bytes` of each; the engine's own log is capped with `max-size` too (uncapped, a
  stdout flood once wrote a 2 GB log);
- the wall clock enforced with `kill()` (PID 1 ignores SIGTERM); the container removed with
  `force=True` whatever happened.

Status rules: wall clock → `timeout`; SIGXCPU (RLIMIT_CPU, per process) → `timeout`; OOMKilled
or a MemoryError on a failed run → `limit_exceeded`; a fork refused (EAGAIN) → `limit_exceeded`;
output over its caps or ENOSPC/EFBIG → `limit_exceeded`; a log flood → `limit_exceeded`;
exit 0 → `ok`; anything else → `error`. Engine unreachable, image missing, container refused →
PlatformError.

The engine must see the worker's files (the probe and output directories are bind mounts):
Docker or Podman on the worker host, not a remote engine.
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sandbox.backends.base import (
    STATUS_ERROR,
    STATUS_LIMIT_EXCEEDED,
    STATUS_TIMEOUT,
    Execution,
    PlatformError,
    SandboxBackend,
)
from sandbox.backends.bwrap import (
    BAD_RUN_ID,
    DENIED_SYSCALLS,
    LOG_FLOOD_FACTOR,
    RUN_ID_RE,
    SANDBOX_ENV,
    STARTED_AT_FILE,
    _mib,
    _mount_tmpfs,
    _Tail,
    _unmount,
    output_and_exit_status,
)
from sandbox.limits import MiB, Limits

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
SANDBOX_UID = SANDBOX_GID = 65534
LABEL_RUN = "cropbias.run"
LABEL_STARTED_AT = "cropbias.started_at"
CONTAINER_PREFIX = "cropbias-run-"
ROOT_RUNS_DIR = Path("/var/tmp/cropbias-docker")
API_TIMEOUT_S = 120
KILL_GRACE_S = 10.0
POLL_INTERVAL_S = 0.25
CANCEL_POLL_INTERVAL_S = 1.0
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
SHM_BYTES = 1 * MiB  # /dev/shm only holds multiprocessing's semaphores
NANO_CPUS = 1_000_000_000  # one CPU: parallelism comes from more runs, not one run's threads
# Podman mounts writable tmpfs on /run and /var/tmp of a read-only container; these keep them
# read-only so /out and /tmp stay the only writable places. Docker adds none: harmless there.
READ_ONLY_TMPFS = ("/run", "/var/tmp")
PODMAN_SECCOMP_PROFILE = Path("/usr/share/containers/seccomp.json")
CLONE_NAMESPACE_MASK = 0x7E020000  # every CLONE_NEW* flag


def podman_seccomp_profile(default: dict) -> dict:
    """Podman's default seccomp profile tightened to what the bwrap filter refuses.

    Podman's default allows unshare, mount, ptrace, keyctl and namespace clones outright (a
    probe became root of its own user namespace and mounted a tmpfs); Docker's default already
    gates those on CAP_SYS_ADMIN. Refused calls return EPERM; clone is allowed only without
    namespace flags and clone3 returns ENOSYS so glibc falls back to clone.
    """
    denied = set(DENIED_SYSCALLS)
    profile = dict(default)
    syscalls = []
    for entry in default.get("syscalls", []):
        names = [n for n in entry.get("names") or [entry.get("name")] if n not in denied and n not in ("clone", "clone3")]
        if names:
            syscalls.append({**entry, "names": names})
    syscalls += [
        {"names": sorted(denied), "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": CLONE_NAMESPACE_MASK, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ]
    profile["syscalls"] = syscalls
    return profile


def _docker():
    """The Docker SDK, imported when a backend is used so bwrap-only hosts need not have it."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:  # pragma: no cover - it is in requirements.txt
        raise PlatformError("the Docker SDK is not installed (pip install docker)") from exc
    return docker


@dataclass
class _Outcome:
    exit_code: int | None
    wall_s: float
    stdout: _Tail
    stderr: _Tail
    oom_killed: bool = False
    killed_status: str | None = None
    killed_error: str | None = None
    evidence: dict = field(default_factory=dict)


class _FrameReader:
    """Splits the attach stream (8-byte header: stream id, 3 zero bytes, big-endian length)."""

    def __init__(self, stdout: _Tail, stderr: _Tail):
        self.streams = {1: stdout, 2: stderr}
        self.pending = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        while len(self.pending) >= 8:
            kind, size = self.pending[0], struct.unpack(">I", self.pending[4:8])[0]
            if len(self.pending) < 8 + size:
                return
            data = bytes(self.pending[8:8 + size])
            del self.pending[:8 + size]
            self.streams.get(kind, self.streams[1]).append(data)


class _OomWatch:
    """OOM kills in the container's cgroup v1 memory group, seen from the host as they happen.

    Podman on cgroup v1 does not report OOMKilled and removes the cgroup before `wait` returns,
    so the kernel's eventfd notification (cgroup.event_control) is read while the run lives.
    Best effort: a remote engine or cgroup v2 leaves it inactive and the engine's flag decides.
    """

    def __init__(self, pid: int | None):
        self.eventfd = self.control_fd = None
        self.oom_kills = 0
        if not pid:
            return
        try:
            for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
                _hier, controllers, path = line.split(":", 2)
                if "memory" in controllers.split(","):
                    group = CGROUP_V1_MEMORY / path.lstrip("/")
                    self.control_fd = os.open(group / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
                    self.eventfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
                    (group / "cgroup.event_control").write_text(f"{self.eventfd} {self.control_fd}")
                    break
        except (OSError, ValueError):
            self.close()

    def check(self) -> bool:
        """Update `oom_kills` from the open memory.oom_control; False once the group is gone."""
        if self.control_fd is None:
            return False
        try:
            text = os.pread(self.control_fd, 4096, 0).decode()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                self.oom_kills = max(self.oom_kills, int(value))
        return True

    def drain(self) -> None:
        """Handle a notification: it comes on an OOM, or when the group is removed.

        A group that can still be read was not removed, so the notice was an OOM (the kernel
        notifies before it counts the kill, and the engine removes the group milliseconds later).
        """
        try:
            os.eventfd_read(self.eventfd)
        except OSError:
            pass
        if self.check():
            self.oom_kills = max(self.oom_kills, 1)

    def close(self) -> None:
        for fd in (self.eventfd, self.control_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.eventfd = self.control_fd = None


class DockerBackend(SandboxBackend):
    """Runs probes in containers through the Docker API (see the module docstring)."""

    name = "docker"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        image: str | None = None,
        runtime: str | None = None,
        probekit_dir: Path | str | None = None,
        runs_dir: Path | str | None = None,
    ):
        self.base_url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        # A registry-built image (Dockerfile.probe); without one the image is built from this host.
        self.image = image or os.environ.get("SANDBOX_DOCKER_IMAGE") or None
        self.runtime = runtime or os.environ.get("SANDBOX_DOCKER_RUNTIME") or None
        self.probekit_dir = Path(probekit_dir) if probekit_dir else PROJECT_ROOT / "probekit"
        self.as_root = os.geteuid() == 0
        if runs_dir is not None:
            self.runs_dir = Path(runs_dir)
        elif self.as_root:
            self.runs_dir = ROOT_RUNS_DIR
        else:
            self.runs_dir = Path(tempfile.gettempdir()) / f"cropbias-docker-{os.geteuid()}"
        self._client_instance = None
        self._image_id: str | None = None
        self._security_opt: list[str] | None = None

    # -- engine ---------------------------------------------------------------------------

    def _client(self):
        """A connected client, or PlatformError naming the engine that did not answer."""
        docker = _docker()
        if self._client_instance is None:
            try:
                self._client_instance = docker.DockerClient(base_url=self.base_url, timeout=API_TIMEOUT_S)
            except docker.errors.DockerException as exc:
                raise PlatformError(f"the container engine at {self.base_url} is unreachable: {exc}") from exc
        try:
            self._client_instance.ping()
        except (docker.errors.DockerException, OSError) as exc:
            raise PlatformError(f"the container engine at {self.base_url} is unreachable: {exc}") from exc
        return self._client_instance

    def _image(self, client) -> str:
        """The probe image's id; a missing configured image is a PlatformError, never a pull."""
        docker = _docker()
        if self.image:
            try:
                return client.images.get(self.image).id
            except docker.errors.ImageNotFound as exc:
                raise PlatformError(f"the probe image {self.image} is missing on {self.base_url}: "
                                    f"build it from Dockerfile.probe") from exc
            except docker.errors.APIError as exc:
                raise PlatformError(f"could not inspect the probe image {self.image}: {exc}") from exc
        if self._image_id is None:
            from sandbox.probe_image import ProbeImageError, ensure_probe_image

            try:
                self._image_id = ensure_probe_image(client, probekit_dir=self.probekit_dir)
            except (ProbeImageError, docker.errors.DockerException, OSError) as exc:
                raise PlatformError(f"could not build the probe image on {self.base_url}: {exc}") from exc
        else:
            try:
                client.images.get(self._image_id)
            except docker.errors.ImageNotFound:
                self._image_id = None  # removed behind our back: build it again
                return self._image(client)
        return self._image_id

    def _security_options(self, client) -> list[str]:
        """no-new-privileges, plus on Podman a seccomp profile as strict as bwrap's filter."""
        if self._security_opt is not None:
            return self._security_opt
        docker = _docker()
        try:
            components = client.version().get("Components") or []
        except docker.errors.DockerException as exc:
            raise PlatformError(f"the container engine at {self.base_url} did not say what it is: {exc}") from exc
        options = ["no-new-privileges"]
        if any("podman" in str(c.get("Name", "")).lower() for c in components):
            try:
                default = json.loads(PODMAN_SECCOMP_PROFILE.read_text())
            except (OSError, ValueError) as exc:
                raise PlatformError(f"Podman's seccomp profile {PODMAN_SECCOMP_PROFILE} is unreadable: {exc}") from exc
            text = json.dumps(podman_seccomp_profile(default), sort_keys=True)
            # Podman reads the profile from a path on its host, which is this host.
            self.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
            path = self.runs_dir / f"seccomp-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
            if not path.exists():
                tmp = path.with_suffix(".part")
                tmp.write_text(text)
                os.replace(tmp, path)
            options.append(f"seccomp={path}")
        self._security_opt = options
        return options

    # -- SandboxBackend -------------------------------------------------------------------

    def available(self) -> tuple[bool, str]:
        try:
            self._client()
        except PlatformError as exc:
            return False, str(exc)
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
        client = self._client()
        image_id = self._image(client)
        # What an earlier delivery of this run left (worker killed) is ended first.
        self._destroy_run(run_id, client)
        run_dir = self.runs_dir / run_id
        container = None
        try:
            details = self._prepare_run_dir(run_dir, Path(probe_dir), limits)
            details.update(image_digest=image_id, engine=self.base_url, uid=SANDBOX_UID,
                           runtime=self.runtime or "default")
            container = self._create(client, image_id, run_dir, limits, run_id)
            outcome = self._supervise(container, limits, should_cancel)
            status, error = self._classify(outcome, limits, run_dir / "out", details)
        except BaseException:
            self._destroy_run(run_id, client)
            raise
        finally:
            if container is not None:
                self._remove_container(container)
        details.update(outcome.evidence)

        def cleanup() -> None:
            self._destroy_run(run_id, client)

        return Execution(
            status=status, exit_code=outcome.exit_code, wall_s=round(outcome.wall_s, 3),
            stdout_tail=outcome.stdout.text(), stderr_tail=outcome.stderr.text(), error=error,
            output_dir=run_dir / "out", cleanup=cleanup, details=details,
        )

    def reap(self, older_than_s: float) -> list[str]:
        """Remove this host's run containers and run directories older than `older_than_s`."""
        docker = _docker()
        now = time.time()
        ended: set[str] = set()
        try:
            client = self._client()
            containers = client.containers.list(all=True, filters={"label": LABEL_RUN})
        except (PlatformError, docker.errors.DockerException):
            client, containers = None, []
        for container in containers:
            labels = container.labels or {}
            try:
                started = float(labels.get(LABEL_STARTED_AT, "0"))
            except ValueError:
                started = 0.0
            if now - started > older_than_s:
                self._remove_container(container)
                ended.add(labels.get(LABEL_RUN) or container.name)
        if self.runs_dir.is_dir():
            for run_dir in self.runs_dir.iterdir():
                if not run_dir.is_dir() or run_dir.is_symlink():
                    continue  # the seccomp profile lives beside the runs
                try:
                    started = float((run_dir / STARTED_AT_FILE).read_text())
                except (OSError, ValueError):
                    started = run_dir.stat().st_mtime
                if now - started > older_than_s:
                    self._destroy_run(run_dir.name, client)
                    ended.add(run_dir.name)
        return sorted(ended)

    # -- set-up and tear-down -------------------------------------------------------------

    def _prepare_run_dir(self, run_dir: Path, probe_dir: Path, limits: Limits) -> dict:
        """Run directory: start time, a world-readable copy of the probe, the output tmpfs."""
        if not (probe_dir / "probe.py").is_file():
            raise PlatformError(f"{probe_dir} holds no probe.py")
        self.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
        os.chmod(self.runs_dir, 0o711)
        run_dir.mkdir(mode=0o711)
        os.chmod(run_dir, 0o711)
        (run_dir / STARTED_AT_FILE).write_text(repr(time.time()))
        probe_copy = run_dir / "probe"
        shutil.copytree(probe_dir, probe_copy, symlinks=True)
        for dirpath, _dirnames, filenames in os.walk(probe_copy):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o644)
        out = run_dir / "out"
        out.mkdir(mode=0o700)
        details: dict = {"output_tmpfs": False}
        if self.as_root:
            options = (f"size={limits.output_bytes},nr_inodes={limits.output_files + 16},"
                       f"mode=0700,uid={SANDBOX_UID},gid={SANDBOX_GID}")
            try:
                _mount_tmpfs(out, options)
            except OSError as exc:
                raise PlatformError(f"could not mount the output tmpfs: {exc}") from exc
            details["output_tmpfs"] = True
        else:
            # The engine's uid 65534 must write here; RLIMIT_FSIZE and the usage check cap it.
            os.chmod(out, 0o777)
        return details

    def _destroy_run(self, run_id: str, client=None) -> None:
        """Remove the run's container (if any), unmount its output tmpfs, delete its files."""
        if client is not None:
            docker = _docker()
            try:
                for container in client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}):
                    self._remove_container(container)
            except docker.errors.DockerException:
                pass
        run_dir = self.runs_dir / run_id
        if run_dir.exists():
            _unmount(run_dir / "out")
            shutil.rmtree(run_dir, ignore_errors=True)

    @staticmethod
    def _remove_container(container) -> None:
        docker = _docker()
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "removal of container" not in str(exc) and "already in progress" not in str(exc):
                raise

    def _create(self, client, image_id: str, run_dir: Path, limits: Limits, run_id: str):
        docker = _docker()
        from docker.types import LogConfig, Mount, Ulimit

        from sandbox.probe_image import PYTHON

        processes = limits.pids * 4  # RLIMIT_NPROC counts uid 65534 host-wide: pids_limit is the cap
        ulimits = [
            Ulimit(name="cpu", soft=int(limits.cpu_s), hard=int(limits.cpu_s) + 1),
            Ulimit(name="nofile", soft=1024, hard=1024),
            Ulimit(name="nproc", soft=processes, hard=processes),
            Ulimit(name="core", soft=0, hard=0),
            Ulimit(name="fsize", soft=limits.output_bytes, hard=limits.output_bytes),
            # Private writable memory: an allocation past the cap is a MemoryError the status
            # rules see, where an OOM kill is not always reported (Podman on cgroup v1).
            Ulimit(name="data", soft=limits.memory_bytes, hard=limits.memory_bytes),
        ]
        tmpfs = {"/tmp": f"size={limits.tmp_bytes},mode=1777"}
        tmpfs.update({path: "ro,size=4k" for path in READ_ONLY_TMPFS})
        kwargs = dict(
            command=[PYTHON, "-s", "/probe/probe.py"],
            name=f"{CONTAINER_PREFIX}{run_id}",
            labels={LABEL_RUN: run_id, LABEL_STARTED_AT: repr(time.time())},
            hostname="sandbox",
            user=f"{SANDBOX_UID}:{SANDBOX_GID}",
            working_dir="/out",
            environment=dict(SANDBOX_ENV),
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=self._security_options(client),
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            pids_limit=limits.pids,
            nano_cpus=NANO_CPUS,
            ulimits=ulimits,
            init=True,
            shm_size=SHM_BYTES,
            tmpfs=tmpfs,
            mounts=[
                Mount("/probe", str(run_dir / "probe"), type="bind", read_only=True),
                Mount("/out", str(run_dir / "out"), type="bind", read_only=False),
            ],
            log_config=LogConfig(type="json-file", config={
                "max-size": f"{max(1, limits.log_bytes // 1024)}k", "max-file": "1"}),
            stdin_open=False,
            tty=False,
            detach=True,
        )
        if self.runtime:
            kwargs["runtime"] = self.runtime
        try:
            return client.containers.create(image_id, **kwargs)
        except docker.errors.ImageNotFound as exc:
            raise PlatformError(f"the probe image {image_id} is missing on {self.base_url}") from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise PlatformError(f"the container engine refused the run container: {exc}") from exc

    # -- running --------------------------------------------------------------------------

    def _supervise(self, container, limits: Limits, should_cancel: Callable[[], bool] | None) -> _Outcome:
        docker = _docker()
        stdout, stderr = _Tail(limits.log_bytes), _Tail(limits.log_bytes)
        outcome = _Outcome(exit_code=None, wall_s=0.0, stdout=stdout, stderr=stderr)
        frames = _FrameReader(stdout, stderr)
        flood_bytes = LOG_FLOOD_FACTOR * limits.log_bytes
        try:
            # Attached before start so not a byte is missed; never `logs()`, which is uncapped.
            stream = container.client.api.attach_socket(
                container.id, params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 0})
            sock = getattr(stream, "_sock", stream)
            container.start()
            started = time.monotonic()
            container.reload()
        except (docker.errors.DockerException, OSError) as exc:
            raise PlatformError(f"the container engine could not start the run: {exc}") from exc
        oom = _OomWatch(container.attrs.get("State", {}).get("Pid"))
        deadline = started + limits.wall_s
        next_cancel = started + CANCEL_POLL_INTERVAL_S
        killed_at: float | None = None

        def kill(status: str, error: str) -> None:
            nonlocal killed_at
            outcome.killed_status, outcome.killed_error = status, error
            killed_at = time.monotonic()
            try:
                container.kill()  # SIGKILL: PID 1 of a container ignores SIGTERM
            except docker.errors.APIError:
                pass  # it exited meanwhile

        try:
            sock.setblocking(False)
            while True:
                now = time.monotonic()
                if killed_at is None:
                    if now >= deadline:
                        kill(STATUS_TIMEOUT, f"wall-clock limit of {limits.wall_s:g} s reached")
                    elif should_cancel is not None and now >= next_cancel:
                        next_cancel = now + CANCEL_POLL_INTERVAL_S
                        if should_cancel():
                            kill(STATUS_ERROR, "cancelled")
                elif now - killed_at > KILL_GRACE_S:
                    break  # the container is gone; only the engine holds the stream open
                timeout = POLL_INTERVAL_S if killed_at is not None else max(0.0, min(POLL_INTERVAL_S, deadline - now))
                watched = [sock] if oom.eventfd is None else [sock, oom.eventfd]
                readable, _, _ = select.select(watched, [], [], timeout)
                oom.check()
                if oom.eventfd is not None and oom.eventfd in readable:
                    oom.drain()
                if sock not in readable:
                    continue
                try:
                    chunk = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    break
                if not chunk:
                    break  # the container's streams closed: its processes are gone
                frames.feed(chunk)
                if killed_at is None and stdout.total + stderr.total > flood_bytes:
                    kill(STATUS_LIMIT_EXCEEDED,
                         f"log size limit reached: more than {_mib(flood_bytes)} printed "
                         f"(the last {_mib(limits.log_bytes)} of each stream are kept)")
        finally:
            oom.check()
            oom.close()
            try:
                sock.close()
            except OSError:
                pass
        try:
            remaining = max(0.0, deadline - time.monotonic()) + 1.0
            result = container.wait(timeout=remaining if killed_at is None else KILL_GRACE_S)
        except Exception:  # requests' ReadTimeout: the streams closed but it still runs
            if killed_at is None:
                kill(STATUS_TIMEOUT, f"wall-clock limit of {limits.wall_s:g} s reached")
            try:
                result = container.wait(timeout=KILL_GRACE_S)
            except Exception as exc:
                raise PlatformError(f"the run container did not stop after kill: {exc}") from exc
        outcome.wall_s = time.monotonic() - started
        try:
            container.reload()
            state = container.attrs.get("State", {})
        except docker.errors.DockerException:
            state = {}
        outcome.exit_code = state.get("ExitCode", result.get("StatusCode"))
        outcome.oom_killed = bool(state.get("OOMKilled")) or oom.oom_kills > 0
        outcome.evidence = {"container_exit_code": outcome.exit_code, "oom_killed": outcome.oom_killed}
        if outcome.killed_status is not None and outcome.exit_code == 128 + signal.SIGKILL:
            outcome.exit_code = None  # our kill, not the probe's exit
        return outcome

    # -- status ---------------------------------------------------------------------------

    def _classify(self, outcome: _Outcome, limits: Limits, out: Path, details: dict) -> tuple[str, str | None]:
        if outcome.killed_status is not None:
            return outcome.killed_status, outcome.killed_error
        code, tail = outcome.exit_code, outcome.stderr.text()
        if code is None:
            raise PlatformError("the container engine reported no exit status for the run")
        failed = code != 0
        if outcome.oom_killed or (failed and "MemoryError" in tail):
            return STATUS_LIMIT_EXCEEDED, f"memory limit of {_mib(limits.memory_bytes)} reached"
        if code == 128 + signal.SIGXCPU:
            return STATUS_TIMEOUT, f"CPU-time limit of {limits.cpu_s} s reached"
        if failed and "Resource temporarily unavailable" in tail:
            return STATUS_LIMIT_EXCEEDED, f"process limit of {limits.pids} reached"
        return output_and_exit_status(code, failed=failed, tail=tail, out=out, limits=limits, details=details)
