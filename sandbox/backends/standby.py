"""The bubblewrap backend's standby: the next run's first process, started before the run.

Every process of a run must be born inside the run's cgroups, and putting a process into a
cgroup makes the kernel wait for an RCU grace period (a few milliseconds, tens on a busy host):
the largest part of a sandbox's start-up. So after each run the worker starts the next run's
first process ahead of time (`Standby.spawn`): a small launcher (`sandbox/backends/_launcher.py`,
the worker's interpreter isolated, standard library only) that joins a fresh set of cgroups (a
"slot", used by exactly one run and removed after it), says it is ready and waits. A run takes
it (`launch`): the worker sends the argument vector, the run's limits and its file descriptors
over a socket pair; the launcher puts the descriptors in place, sets the rlimits, drops root,
ties itself to the worker's life, arms the engine-side wall bound and executes bwrap. The
kernel's wait is paid between runs, and the worker itself never forks (its memory is not copied).

The launcher dies with the worker (parent-death signal) and exits on end of file (`discard`).
Any failure before exec is reported on an error pipe, as subprocess does, and becomes a
PlatformError. The standbys a worker process prepared are its `StandbyPool` (`STANDBYS`, ended
at exit): at most one per backend configuration, taken by exactly one run.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

from sandbox.backends.base import PlatformError
from sandbox.backends.cgroups import kill_cgroups, remove_cgroups

LAUNCHER = Path(__file__).with_name("_launcher.py")
SECCOMP_FD, STATUS_FD = 3, 4  # where bwrap finds them (the launcher's fds 0..4 after the job)


class Process:
    """The started bwrap (the launcher, after exec), with the streams the watchdog reads."""

    def __init__(self, popen: subprocess.Popen, stdout, stderr):
        self._popen, self.stdout, self.stderr = popen, stdout, stderr
        self.pid = popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def poll(self) -> int | None:
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._popen.wait(timeout=timeout)

    def kill(self) -> None:
        self._popen.kill()


class Standby:
    """A launcher inside the cgroups of `slot`, waiting for its run (see the module docstring)."""

    def __init__(self, slot: str, cgroups, popen: subprocess.Popen, sock: socket.socket):
        self.slot, self.cgroups, self._popen, self.sock = slot, cgroups, popen, sock
        self.pid = popen.pid
        self._ready = False

    @classmethod
    def spawn(cls, slot: str, cgroups, cgroup_fds: list[int]) -> "Standby":
        """Start the launcher; it joins the cgroups behind `cgroup_fds` (closed here) on its own time."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # No preexec function: subprocess may then vfork, however large the worker.
            popen = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), str(os.getpid()), str(theirs.fileno()),
                 *map(str, cgroup_fds)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={}, cwd="/",
                pass_fds=(theirs.fileno(), *cgroup_fds), start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            ours.close()
            raise PlatformError(f"could not start the sandbox's standby process: {exc}") from exc
        finally:
            theirs.close()
            for fd in cgroup_fds:
                os.close(fd)
        return cls(slot, cgroups, popen, ours)

    def alive(self) -> bool:
        return self._popen.poll() is None

    def wait_ready(self, timeout_s: float) -> bool:
        """True once the launcher joined its cgroups (it says so once; later calls remember)."""
        if not self._ready:
            ready, _, _ = select.select([self.sock], [], [], timeout_s)
            if ready:
                self._ready = self.sock.recv(16) == b"ready"
        return self._ready

    def launch(self, *, argv: list[str], rlimits: list[tuple[int, int, int]], drop: bool, uid: int, gid: int,
               wall_s: int, seccomp_fd: int, status_w: int) -> Process:
        """Make the launcher execute `argv`; back once it did (or PlatformError with its reason)."""
        job = json.dumps({"argv": argv, "rlimits": rlimits, "drop": drop, "uid": uid, "gid": gid,
                          "wall_s": wall_s}).encode()
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        error_r, error_w = os.pipe2(os.O_CLOEXEC)
        stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            socket.send_fds(self.sock, [job], [stdin, out_w, err_w, seccomp_fd, status_w, error_w])
        except OSError as exc:
            self.sock.close()
            for fd in (out_r, err_r, error_r):
                os.close(fd)
            raise PlatformError(f"the sandbox's standby process is gone: {exc}") from exc
        finally:
            for fd in (out_w, err_w, error_w, stdin):
                os.close(fd)
        process = Process(self._popen, os.fdopen(out_r, "rb", 0), os.fdopen(err_r, "rb", 0))
        with os.fdopen(error_r, "rb", 0) as errors:
            reason = errors.read()  # end of file at exec
        # Only now: closing a socket with its "ready" unread resets the peer's, job or not.
        self.sock.close()
        if reason:
            process.wait()
            process.stdout.close()
            process.stderr.close()
            raise PlatformError(f"could not start bubblewrap: {reason.decode('utf-8', 'replace')}")
        return process

    def discard(self) -> None:
        """End the launcher (it exits on end of file; killed should it not) and reap it."""
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            self._popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=5)


class StandbyPool:
    """The standbys this process prepared between runs, one per backend configuration (`key`).

    A standby is taken by exactly one run (`take`); the next one is prepared after the run
    (`prepare`), from the main thread only: the parent-death signal follows the thread that
    started the process, so a standby started by a thread that ends next would die with it,
    or worse take a later run's bwrap with it. Runs in other threads start their own.
    """

    def __init__(self) -> None:
        self._standbys: dict[tuple, Standby] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple, spawn) -> Standby:
        """The standby prepared for `key` after this process's last run, else one `spawn`ed now."""
        with self._lock:
            standby = self._standbys.pop(key, None)
        if standby is not None:
            if standby.alive():
                return standby
            end_standby(standby)  # reaped, or its thread ended (the parent-death signal follows the thread)
        return spawn()

    def prepare(self, key: tuple, spawn) -> Standby | None:
        """Start the next run's standby now, so its wait for the kernel is off a run's path."""
        if threading.current_thread() is not threading.main_thread():
            return None
        standby = spawn()
        with self._lock:
            previous = self._standbys.pop(key, None)
            self._standbys[key] = standby
        if previous is not None:
            end_standby(previous)
        return standby

    def release(self) -> None:
        """End every standby and remove its cgroups (at exit; a test before removing its prefix)."""
        with self._lock:
            standbys = list(self._standbys.values())
            self._standbys.clear()
        for standby in standbys:
            end_standby(standby)

    def slots(self) -> set[str]:
        """The slots of the pool's standbys (their cgroups are the only ones live between runs)."""
        with self._lock:
            return {standby.slot for standby in self._standbys.values()}

    def wait_ready(self, timeout_s: float = 5.0) -> bool:
        """Wait until the pool's standbys have joined their cgroups (what an idle worker's time does)."""
        with self._lock:
            standbys = list(self._standbys.values())
        return all(standby.wait_ready(timeout_s) for standby in standbys)


def end_standby(standby: Standby) -> None:
    """Discard a standby and end and remove its slot's cgroups."""
    standby.discard()
    kill_cgroups(standby.cgroups, wait_s=1.0)
    remove_cgroups(standby.cgroups, wait_s=1.0)


# This worker process's pool: every bubblewrap backend of the process uses it.
STANDBYS = StandbyPool()
atexit.register(STANDBYS.release)
