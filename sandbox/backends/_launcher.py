"""The standby launcher: a small process that waits, inside the next run's cgroups, to become bwrap.

Run by `sandbox.backends.standby` as `python -I -S _launcher.py <worker pid> <socket fd> <cgroup fd>...`
(the socket pair's other end is the worker). Standard library only (it runs isolated, before any run):

1. die with the worker (parent-death signal); join the run's cgroups (write "0" to each
   cgroup.procs descriptor: the kernel's wait happens here, between runs); say "ready";
2. wait for the job: the argument vector, rlimits, uid/gid and wall bound as JSON, with the
   descriptors stdin, stdout, stderr, seccomp, status and an error pipe;
3. put the descriptors at 0..4, close every other one, set the rlimits, drop root, tie itself to
   the worker again (a uid change clears the parent-death signal), arm the wall bound (`alarm`:
   it survives exec) and execute bwrap. Any failure is written to the error pipe, then exit 127.
"""
import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1
JOB_FDS = 6  # stdin, stdout, stderr, seccomp, status, error pipe
ERROR_FD = 5
MAX_JOB_BYTES = 1 << 20


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    worker = int(sys.argv[1])
    sock = socket.socket(fileno=int(sys.argv[2]))
    cgroup_fds = [int(fd) for fd in sys.argv[3:]]
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != worker:
        os._exit(0)  # the worker is already gone
    failure = None
    try:
        for fd in cgroup_fds:
            os.write(fd, b"0")  # still root: "0" moves the writer
    except OSError as exc:
        failure = f"could not join the run's cgroups: {exc}"
    for fd in cgroup_fds:
        os.close(fd)
    try:  # a worker that already sent the job may have closed its end: the job is still queued
        sock.send(b"ready" if failure is None else b"failed")
    except OSError:
        pass
    try:
        message, fds, _flags, _addr = socket.recv_fds(sock, MAX_JOB_BYTES, JOB_FDS)
    except OSError:
        os._exit(0)
    if not message or len(fds) != JOB_FDS:
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
        error_w = ERROR_FD
        os.closerange(ERROR_FD + 1, max(64 + len(high) + 2, os.sysconf("SC_OPEN_MAX")))
        for kind, soft, hard in job["rlimits"]:
            resource.setrlimit(kind, (soft, hard))
        if job["drop"]:
            uid, gid = job["uid"], job["gid"]
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
                raise OSError("could not drop root privileges")
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != worker:
            raise OSError("could not tie the sandbox to the worker's life")
        # What bwrap inherits as it did from subprocess: default dispositions (Python ignores
        # SIGPIPE and SIGXFSZ, and an ignored signal survives exec), nothing blocked.
        for signum in range(1, signal.NSIG):
            if signum not in (signal.SIGKILL, signal.SIGSTOP):
                try:
                    signal.signal(signum, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        libc.alarm(job["wall_s"])
        os.execve(job["argv"][0], job["argv"], {})
    except BaseException as exc:  # noqa: BLE001 - reported to the worker, never raised
        try:
            os.write(error_w, f"{type(exc).__name__}: {exc}".encode()[:4096])
        except OSError:
            pass
    os._exit(127)


if __name__ == "__main__":
    main()
