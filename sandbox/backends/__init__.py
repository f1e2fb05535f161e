"""Sandbox backends by name: `bwrap` (default, bubblewrap on this host) and `docker` (Docker API)."""
from __future__ import annotations

from sandbox.backends.base import PlatformError, SandboxBackend

BACKENDS = ("bwrap", "docker")


def get_backend(name: str) -> SandboxBackend:
    """A new backend named `name`; raises ValueError for an unknown name.

    The Docker backend is imported only when asked for, so a host without the Docker SDK
    still runs bubblewrap; asking for it there raises PlatformError.
    """
    if name == "bwrap":
        from sandbox.backends.bwrap import BubblewrapBackend

        return BubblewrapBackend()
    if name == "docker":
        try:
            from sandbox.backends.docker import DockerBackend
        except ImportError as exc:
            raise PlatformError("the docker backend is not installed") from exc
        return DockerBackend()
    raise ValueError(f"unknown sandbox backend {name!r}; choose one of: {', '.join(BACKENDS)}")
