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

from probekit.imageset import ImageSet
from sandbox.limits import Limits
from sandbox.status import RunStatus


class PlatformError(RuntimeError):
    """The sandbox itself could not run (missing tool, engine down): never the probe's fault."""


@dataclass
class RunResult:
    """One run: what the backend observed, then what the runner made of its output.

    A backend returns it with `output_dir` (the probe's output on the host, readable by the
    worker) and `cleanup`; the runner validates that output, sets `image_set_path`, `n_images`
    and `image_set` (or turns the status into `rejected`) and calls `cleanup`.
    """

    status: RunStatus
    exit_code: int | None = None
    wall_s: float = 0.0
    stdout_tail: str = ""
    stderr_tail: str = ""
    error: str | None = None
    image_set_path: Path | None = None
    n_images: int = 0
    # The validated set's facts (title, groups, items, manifest hash) at `image_set_path`: the
    # runner read and hashed it once, so nobody on the trusted side reads it again.
    image_set: ImageSet | None = field(default=None, repr=False)
    details: dict = field(default_factory=dict)  # backend facts worth recording (image digest, uid…)
    output_dir: Path | None = field(default=None, repr=False)
    cleanup: Callable[[], None] = field(default=lambda: None, repr=False)

    @classmethod
    def finished(cls, outcome, *, status: RunStatus, error: str | None, output_dir: Path, details: dict,
                 cleanup: Callable[[], None]) -> "RunResult":
        """Both backends' result of a supervised run: the watchdog's `outcome` (sandbox.policy.Outcome)
        with its evidence added to `details`, and the verdict on it."""
        details.update(outcome.evidence)
        return cls(status=status, exit_code=outcome.exit_code, wall_s=round(outcome.wall_s, 3),
                   stdout_tail=outcome.stdout.text(), stderr_tail=outcome.stderr.text(), error=error,
                   output_dir=output_dir, cleanup=cleanup, details=details)

    def to_json(self) -> dict:
        """The JSON of `manage.py run_probe --json`."""
        image_set = {"path": str(self.image_set_path), "n_images": self.n_images} if self.image_set_path else None
        return {"status": self.status, "exit_code": self.exit_code, "wall_s": round(self.wall_s, 3),
                "stdout_tail": self.stdout_tail, "stderr_tail": self.stderr_tail, "error": self.error,
                "image_set": image_set}


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
        models_dir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> RunResult:
        """Run `python /probe/probe.py` from `probe_dir` under `limits`; never raise for probe faults.

        Raises PlatformError when the sandbox cannot be set up. `should_cancel` is polled about
        once a second; when it returns True the run is killed and reported as an error
        "cancelled". `models_dir`, when given, is mounted read-only at /models and named by
        PROBEKIT_MODELS_DIR (what the probe may see of a registered target model). `env` adds
        variables to the sandbox's environment (a confirmatory run's PROBE_SEED and marker, when
        the built-in model weights are hidden too).
        """

    def available(self) -> tuple[bool, str]:
        """(usable, reason) without running anything heavy."""
        return True, ""

    def reap(self, older_than_s: float) -> list[str]:
        """End this deployment's stray sandboxes older than `older_than_s`; return what was ended."""
        return []
