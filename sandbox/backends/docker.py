"""The Docker-API backend: each probe in a locked-down container on Docker, Podman or gVisor.

Layers of one run, the same contract as bubblewrap (`sandbox.backends.bwrap`):

- the probe image (`sandbox.probe_image`, or `SANDBOX_DOCKER_IMAGE` built from
  Dockerfile.probe) with a read-only root filesystem, no network (`network_mode="none"`),
  uid/gid 65534, every capability dropped, no new privileges and the engine's default seccomp
  profile; `SANDBOX_DOCKER_RUNTIME=runsc` runs it under gVisor;
- memory with equal memory+swap, a pids limit, one CPU, and rlimits always passed (CPU seconds,
  open files, processes, file size, no core dumps): an engine's own defaults may not apply;
- coreutils `timeout -s KILL` as PID 1: the container ends itself a few seconds after the wall
  clock whatever its supervisor does (starved, stopped or killed), the probe's parent is PID 1
  (no signal from inside reaches it), and the probe's exit ends every process of the container
  (orphans are not reaped until then; they count against the pids limit);
- the probe at /probe (a private, world-readable copy, bound read-only); a size-capped /tmp and
  a private /dev/shm of `limits.shm_bytes`;
  the output directory at /out on a per-run tmpfs the worker mounts with size and inode caps
  and binds in, exactly as bwrap does: a container's own tmpfs vanishes with its last process,
  so it could not be read once the probe exited, and Podman refuses its `nr_inodes` option;
- stdout/stderr read from an attach stream opened before start, keeping the last
  `limits.log_bytes` of each; the engine's own log is capped with `max-size` too (uncapped, a
  stdout flood once wrote a 2 GB log);
- the wall clock enforced by the watchdog with `kill()`; the container removed with
  `force=True` whatever happened, also when the worker gets SIGTERM/SIGINT
  (`sandbox.policy.live_sandbox`); containers carry the deployment id in their name and labels,
  and `reap` ends only its own deployment's.

Status rules: `sandbox.policy.verdict` (OOMKilled, or the OOM eventfd, is the memory evidence).
Engine unreachable, image missing, container refused → PlatformError.

The engine must see the worker's files (the probe and output directories are bind mounts):
Docker or Podman on the worker host, not a remote engine.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import tempfile
import time
from pathlib import Path
from typing import Callable

from sandbox.backends.base import PlatformError, RunResult, SandboxBackend
from sandbox.limits import Limits
from sandbox.policy import (
    CONFIRMATORY_ENV,
    DENIED_SYSCALLS,
    KILL_GRACE_S,
    MODELS_COPY,
    MODELS_ENV,
    MODELS_MOUNT,
    PROBEKIT_WEIGHTS,
    SANDBOX_ENV,
    SANDBOX_GID,
    SANDBOX_UID,
    TIMEOUT_PROGRAM,
    Outcome,
    Tail,
    Watchdog,
    check_run_id,
    deployment_id,
    engine_wall_s,
    live_sandbox,
    prepare_run_dir,
    remove_run_dir,
    run_started_at,
    verdict,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
LABEL_RUN = "cropbias.run"
LABEL_STARTED_AT = "cropbias.started_at"
LABEL_DEPLOYMENT = "cropbias.deployment"
CONTAINER_PREFIX = "cropbias-"  # then the deployment id, "-run-" and the run id
ROOT_RUNS_DIR = Path("/var/tmp/cropbias-docker")
API_TIMEOUT_S = 120
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
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


class _FrameReader:
    """Splits the attach stream (8-byte header: stream id, 3 zero bytes, big-endian length)."""

    def __init__(self, stdout: Tail, stderr: Tail):
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
        deployment: str | None = None,
    ):
        self.base_url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        # A registry-built image (Dockerfile.probe); without one the image is built from this host.
        self.image = image or os.environ.get("SANDBOX_DOCKER_IMAGE") or None
        self.runtime = runtime or os.environ.get("SANDBOX_DOCKER_RUNTIME") or None
        self.probekit_dir = Path(probekit_dir) if probekit_dir else PROJECT_ROOT / "probekit"
        self.as_root = os.geteuid() == 0
        self.deployment = deployment or deployment_id()
        if runs_dir is not None:
            self.runs_dir = Path(runs_dir)
        elif self.as_root:
            self.runs_dir = ROOT_RUNS_DIR / self.deployment
        else:
            self.runs_dir = Path(tempfile.gettempdir()) / f"cropbias-docker-{os.geteuid()}" / self.deployment
        self._client_instance = None
        self._image_id: str | None = None
        self._security_opt: list[str] | None = None

    # -- engine ---------------------------------------------------------------------------

    def _connect(self):
        docker = _docker()
        try:
            return docker.DockerClient(base_url=self.base_url, timeout=API_TIMEOUT_S)
        except docker.errors.DockerException as exc:
            raise PlatformError(f"the container engine at {self.base_url} is unreachable: {exc}") from exc

    def _client(self):
        """A connected client, or PlatformError naming the engine that did not answer."""
        docker = _docker()
        if self._client_instance is None:
            self._client_instance = self._connect()
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
        models_dir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> RunResult:
        check_run_id(run_id)
        client = self._client()
        image_id = self._image(client)
        # What an earlier delivery of this run left (worker killed) is ended first.
        self._destroy_run(run_id, client)
        container = None

        def end() -> None:
            # From a signal handler the main thread may be inside a request: a connection of its own.
            self._destroy_run(run_id, self._connect())

        with live_sandbox(f"docker:{self.deployment}:{run_id}", end):
            try:
                run_dir, details = prepare_run_dir(self.runs_dir, run_id, Path(probe_dir), limits,
                                                   as_root=self.as_root, uid=SANDBOX_UID, gid=SANDBOX_GID,
                                                   models_dir=models_dir)
                if not self.as_root:
                    os.chmod(run_dir / "out", 0o777)  # the engine's uid 65534 writes here
                details.update(image_digest=image_id, engine=self.base_url, uid=SANDBOX_UID,
                               runtime=self.runtime or "default", deployment=self.deployment)
                container = self._create(client, image_id, run_dir, limits, run_id, env=env)
                outcome = self._supervise(container, limits, should_cancel)
                status, error = verdict(outcome, limits, out=run_dir / "out", details=details,
                                        no_exit_status="the container engine reported no exit status for the run")
            except BaseException:
                self._destroy_run(run_id, client)
                raise
            finally:
                if container is not None:
                    self._remove_container(container)
        return RunResult.finished(outcome, status=status, error=error, output_dir=run_dir / "out", details=details,
                                  cleanup=lambda: self._destroy_run(run_id, client))

    def _labels(self, run_id: str | None = None) -> list[str]:
        """Label filters for this deployment's run containers (one run's, given `run_id`)."""
        return [f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN, f"{LABEL_DEPLOYMENT}={self.deployment}"]

    def reap(self, older_than_s: float) -> list[str]:
        """Remove this deployment's run containers and run directories older than `older_than_s`."""
        docker = _docker()
        now = time.time()
        ended: set[str] = set()
        try:
            client = self._client()
            containers = client.containers.list(all=True, filters={"label": self._labels()})
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
                if now - run_started_at(run_dir) > older_than_s:
                    self._destroy_run(run_dir.name, client)
                    ended.add(run_dir.name)
        return sorted(ended)

    # -- set-up and tear-down -------------------------------------------------------------

    def _destroy_run(self, run_id: str, client=None) -> None:
        """Remove the run's container (if any), unmount its output tmpfs, delete its files."""
        if client is not None:
            docker = _docker()
            try:
                for container in client.containers.list(all=True, filters={"label": self._labels(run_id)}):
                    self._remove_container(container)
            except docker.errors.DockerException:
                pass
        remove_run_dir(self.runs_dir / run_id)

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

    def _create(self, client, image_id: str, run_dir: Path, limits: Limits, run_id: str,
                env: dict[str, str] | None = None):
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
        models = run_dir / MODELS_COPY if (run_dir / MODELS_COPY).is_dir() else None
        tmpfs = {"/tmp": f"size={limits.tmp_bytes},mode=1777"}
        tmpfs.update({path: "ro,size=4k" for path in READ_ONLY_TMPFS})
        hidden = []
        if (env or {}).get(CONFIRMATORY_ENV):  # no target model in a confirmatory run: an empty folder over the weights
            (run_dir / "no-weights").mkdir(exist_ok=True)
            hidden = [Mount(PROBEKIT_WEIGHTS, str(run_dir / "no-weights"), type="bind", read_only=True)]
        kwargs = dict(
            command=[TIMEOUT_PROGRAM, "-s", "KILL", str(engine_wall_s(limits)), PYTHON, "-s", "/probe/probe.py"],
            name=f"{CONTAINER_PREFIX}{self.deployment}-run-{run_id}",
            labels={LABEL_RUN: run_id, LABEL_STARTED_AT: repr(time.time()), LABEL_DEPLOYMENT: self.deployment},
            hostname="sandbox",
            user=f"{SANDBOX_UID}:{SANDBOX_GID}",
            working_dir="/out",
            environment={**SANDBOX_ENV, **({MODELS_ENV: MODELS_MOUNT} if models else {}), **(env or {})},
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=self._security_options(client),
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            pids_limit=limits.pids,
            nano_cpus=NANO_CPUS,
            ulimits=ulimits,
            shm_size=limits.shm_bytes,
            tmpfs=tmpfs,
            mounts=[
                Mount("/probe", str(run_dir / "probe"), type="bind", read_only=True),
                Mount("/out", str(run_dir / "out"), type="bind", read_only=False),
                *([Mount(MODELS_MOUNT, str(models), type="bind", read_only=True)] if models else []),
                *hidden,
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

    def _supervise(self, container, limits: Limits, should_cancel: Callable[[], bool] | None) -> Outcome:
        docker = _docker()
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

        def kill() -> None:
            try:
                container.kill()  # SIGKILL to PID 1 from outside: the whole container ends
            except docker.errors.APIError:
                pass  # it exited meanwhile

        watchdog = Watchdog(limits, started=started, kill=kill, should_cancel=should_cancel)
        outcome = watchdog.outcome
        frames = _FrameReader(outcome.stdout, outcome.stderr)
        try:
            sock.setblocking(False)
            events = {} if oom.eventfd is None else {oom.eventfd: oom.drain}
            watchdog.watch({sock.fileno(): frames.feed}, events=events, tick=oom.check)
        finally:
            oom.check()
            oom.close()
            try:
                sock.close()
            except OSError:
                pass
        try:
            result = container.wait(timeout=watchdog.remaining_s() + 1.0 if watchdog.killed_at is None else KILL_GRACE_S)
        except Exception:  # requests' ReadTimeout: the streams closed but it still runs
            if watchdog.killed_at is None:
                watchdog.time_out()
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
        oom_killed = bool(state.get("OOMKilled")) or oom.oom_kills > 0
        outcome.evidence = {"container_exit_code": outcome.exit_code, "oom_killed": oom_killed}
        if outcome.killed_status is not None and outcome.exit_code == 128 + signal.SIGKILL:
            outcome.exit_code = None  # our kill, not the probe's exit
        return outcome
