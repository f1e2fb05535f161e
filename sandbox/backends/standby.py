"""The bubblewrap backend's standby: the next run's first process, started before the run.

Every process of a run must be born inside the run's cgroups, and putting a process into a
cgroup makes the kernel wait for an RCU grace period (a few milliseconds, tens on a busy host):
the largest part of a sandbox's start-up. So after each run the worker forks the next run's
first process ahead of time (`Standby.spawn`): it joins a fresh set of cgroups (a "slot", used by
exactly one run and removed after it) and waits. A run takes it (`launch`): the worker sends the
argument vector, the run's limits and its file descriptors over a socket pair; the standby puts
the descriptors in place, sets the rlimits, drops root, ties itself to the worker's life, arms
the engine-side wall bound and executes bwrap. The wait for the kernel is paid between runs.

The standby is a forked copy of the worker that runs nothing but system calls: the worker's
signal handlers are reset first (they end the worker's sandboxes), it dies with the worker
(parent-death signal), and it exits on end of file (`discard`). Any failure in the standby is
reported on an error pipe before exec, as subprocess does, and becomes a PlatformError.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import select
import signal
import socket
import subprocess

from sandbox.backends.base import PlatformError
from sandbox.policy import libc

PR_SET_PDEATHSIG = 1
SIG_DFL = 0
# The descriptors the standby receives, in this order, become 0..4; the error pipe is kept apart.
CHILD_FDS = ("stdin", "stdout", "stderr", "seccomp", "status")
SECCOMP_FD, STATUS_FD = 3, 4
ERROR_FD = 5
MAX_JOB_BYTES = 1 << 20


def _standby_child(sock: socket.socket, cgroup_fds: list[int], worker: int) -> None:
    """The standby's whole life; never returns (exec or _exit)."""
    c = libc()
    failure = None
    try:
        # A handler of the worker's would end the worker's sandboxes from here: defaults for all
        # (also undoes Python's SIGPIPE/SIGXFSZ ignores, as subprocess's restore_signals does).
        for signum in range(1, signal.NSIG):
            if signum not in (signal.SIGKILL, signal.SIGSTOP):
                c.signal(signum, SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        if c.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != worker:
            os._exit(0)
        os.setsid()
        # While still root: "0" moves the writer; this is the wait the standby exists to pay early.
        try:
            for fd in cgroup_fds:
                os.write(fd, b"0")
        except OSError as exc:
            failure = f"could not join the run's cgroups: {exc}"
        for fd in cgroup_fds:
            os.close(fd)
        message, fds, _flags, _addr = socket.recv_fds(sock, MAX_JOB_BYTES, len(CHILD_FDS) + 1)
        if not message:
            os._exit(0)  # discarded
        error_w = fcntl.fcntl(fds[-1], fcntl.F_DUPFD_CLOEXEC, 64)
        try:
            if failure is not None:
                raise OSError(failure)
            job = json.loads(message)
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in fds[:-1]]
            for target, fd in enumerate(high):
                os.dup2(fd, target)  # inheritable, at the numbers the argument vector names
            os.dup2(error_w, ERROR_FD, inheritable=False)
            os.closerange(ERROR_FD + 1, os.sysconf("SC_OPEN_MAX"))
            error_w = ERROR_FD
            for kind, soft, hard in job["rlimits"]:
                resource.setrlimit(kind, (soft, hard))
            if job["drop"]:
                uid, gid = job["uid"], job["gid"]
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
                if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
                    raise OSError("could not drop root privileges")
            # After the uid change (which clears it): bwrap dies with the worker, the sandbox with bwrap.
            if c.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != worker:
                raise OSError("could not tie the sandbox to the worker's life")
            # The engine-side wall bound: the real-time timer survives exec and ends bwrap's monitor.
            c.alarm(job["wall_s"])
            os.execve(job["argv"][0], job["argv"], {})
        except BaseException as exc:  # noqa: BLE001 - reported to the worker, never raised here
            with contextlib.suppress(OSError):
                os.write(error_w, f"{type(exc).__name__}: {exc}".encode()[:4096])
    except BaseException:  # noqa: BLE001 - nothing may unwind into the worker's code
        pass
    os._exit(127)


class Process:
    """The started bwrap, with the part of subprocess.Popen's interface the backend uses."""

    def __init__(self, pid: int, stdout, stderr):
        self.pid, self.stdout, self.stderr = pid, stdout, stderr
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(pid)

    def _reap(self, flags: int) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, flags)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                os.close(self._pidfd)
        return self.returncode

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and timeout is not None:
            ready, _, _ = select.select([self._pidfd], [], [], max(0.0, timeout))
            if not ready:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
        return self._reap(0)

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class Standby:
    """A forked child inside the cgroups of `slot`, waiting for its run (see the module docstring)."""

    def __init__(self, slot: str, cgroups, pid: int, sock: socket.socket):
        self.slot, self.cgroups, self.pid, self.sock = slot, cgroups, pid, sock
        self._pidfd = os.pidfd_open(pid)

    @classmethod
    def spawn(cls, slot: str, cgroups, cgroup_fds: list[int]) -> "Standby":
        """Fork the standby; it joins the cgroups behind `cgroup_fds` (closed here) on its own time."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            worker = os.getpid()
            pid = os.fork()
            if pid == 0:
                ours.close()
                _standby_child(theirs, cgroup_fds, worker)
        except OSError as exc:
            ours.close()
            raise PlatformError(f"could not start the sandbox's standby process: {exc}") from exc
        finally:
            theirs.close()
            for fd in cgroup_fds:
                os.close(fd)
        return cls(slot, cgroups, pid, ours)

    def alive(self) -> bool:
        ready, _, _ = select.select([self._pidfd], [], [], 0)
        return not ready

    def launch(self, *, argv: list[str], rlimits: list[tuple[int, int, int]], drop: bool, uid: int, gid: int,
               wall_s: int, seccomp_fd: int, status_w: int) -> Process:
        """Make the standby execute `argv`; back once it did (or PlatformError with its reason)."""
        job = json.dumps({"argv": argv, "rlimits": rlimits, "drop": drop, "uid": uid, "gid": gid,
                          "wall_s": wall_s}).encode()
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        error_r, error_w = os.pipe2(os.O_CLOEXEC)
        stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            socket.send_fds(self.sock, [job], [stdin, out_w, err_w, seccomp_fd, status_w, error_w])
        except OSError as exc:
            for fd in (out_r, err_r, error_r):
                os.close(fd)
            raise PlatformError(f"the sandbox's standby process is gone: {exc}") from exc
        finally:
            for fd in (out_w, err_w, error_w, stdin):
                os.close(fd)
            self.sock.close()
            os.close(self._pidfd)
        process = Process(self.pid, os.fdopen(out_r, "rb", 0), os.fdopen(err_r, "rb", 0))
        with os.fdopen(error_r, "rb", 0) as errors:
            reason = errors.read()  # end of file at exec
        if reason:
            process.wait()
            process.stdout.close()
            process.stderr.close()
            raise PlatformError(f"could not start bubblewrap: {reason.decode('utf-8', 'replace')}")
        return process

    def discard(self) -> None:
        """End the standby (it exits on end of file; killed should it not) and forget it."""
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        with contextlib.suppress(OSError):
            os.close(self._pidfd)
