"""The bubblewrap backend's seccomp filter: the system calls a probe may not make.

Default action ALLOW (a probe is ordinary Python with numpy and Pillow); the kernel attack surface
a probe has no use for answers EPERM (the list is `sandbox.policy.DENIED_SYSCALLS`, shared with
the Docker backend's profile).
"""
from __future__ import annotations

import errno
import functools
import tempfile

from sandbox.backends.base import PlatformError
from sandbox.policy import DENIED_SYSCALLS

# Linux clone(2) namespace flags a probe may not use (x86_64: clone's first argument).
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
TIOCSTI, TIOCLINUX = 0x5412, 0x541C


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
