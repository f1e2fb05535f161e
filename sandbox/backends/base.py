"""The interface every sandbox backend implements (bubblewrap, Docker API).

A backend only *executes*: it starts `python /probe/probe.py` with the probe directory
mounted read-only at /probe, the working directory and PROBE_OUTPUT_DIR set to a
size-capped writable output directory, and returns what happened. Preparing the probe
directory, validating the output and copying it out are shared (sandbox.runner).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sandbox.limits import Limits

# Run statuses, DESIGN §3.
STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"
STATUS_LIMIT_EXCEEDED = "limit_exceeded"
STATUS_REJECTED = "rejected"
STATUS_PLATFORM_ERROR = "platform_error"
STATUSES = (STATUS_OK, STATUS_ERROR, STATUS_TIMEOUT, STATUS_LIMIT_EXCEEDED, STATUS_REJECTED, STATUS_PLATFORM_ERROR)


class PlatformError(RuntimeError):
    """The sandbox itself could not run (missing tool, engine down): never the probe's fault."""


@dataclass
class Execution:
    """What a backend observed. `status` is one of STATUSES except `rejected` (decided later)."""

    status: str
    exit_code: int | None
    wall_s: float
    stdout_tail: str = ""
    stderr_tail: str = ""
    error: str | None = None
    # Directory on the host holding the probe's output, readable by the worker; the runner
    # validates it and copies it out, then calls `cleanup`.
    output_dir: Path | None = None
    cleanup: Callable[[], None] = field(default=lambda: None)
    details: dict = field(default_factory=dict)  # backend facts worth recording (image digest, uid…)


class SandboxBackend(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    def execute(
        self,
        probe_dir: Path,
        *,
        limits: Limits,
        run_id: str,
        should_cancel: Callable[[], bool] | None = None,
    ) -> Execution:
        """Run `python /probe/probe.py` from `probe_dir` under `limits`; never raise for probe faults.

        Raises PlatformError when the sandbox cannot be set up. `should_cancel` is polled about
        once a second; when it returns True the run is killed and reported as an error
        "cancelled".
        """

    def available(self) -> tuple[bool, str]:
        """(usable, reason) without running anything heavy."""
        return True, ""

    def reap(self, older_than_s: float) -> list[str]:
        """End stray sandboxes of this host older than `older_than_s`; return what was ended."""
        return []
