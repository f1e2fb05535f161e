"""Run one probe in a sandbox and turn its output into a validated image set.

The shared part of every backend: unpack the probe, execute it (the backend), validate the
output on the trusted side (probekit.imageset), copy exactly the listed files out, clean up.
The output is copied into a sibling temp directory and renamed into place, so an image set
is either wholly stored or not at all.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from probekit.imageset import ImageSetRejected, open_listed_file, validate_image_set
from probekit.models.registered import CARD_FILE, MODEL_FILE
from sandbox.backends import get_backend
from sandbox.backends.base import (
    PlatformError,
    RunResult,
    SandboxBackend,
)
from sandbox.limits import DEFAULT_LIMITS, Limits
from sandbox.policy import confirmatory_env, live_sandbox
from sandbox.probe_files import ProbeFileError, unpack_probe
from sandbox.status import RunStatus

logger = logging.getLogger(__name__)

DEFAULT_BACKEND = os.environ.get("SANDBOX_BACKEND", "bwrap")


@dataclass(frozen=True)
class TargetModelView:
    """A registered target model as a probe may see it: its card always, its weights only when public."""

    name: str
    directory: Path  # the registered model's directory (model.onnx, card.json)
    public: bool


def target_model_view(target: TargetModelView, dest: Path) -> Path:
    """`dest` holding `<name>/card.json` and, for a public model, `<name>/model.onnx` (the /models mount)."""
    folder = dest / target.name
    folder.mkdir(parents=True)
    shutil.copyfile(target.directory / CARD_FILE, folder / CARD_FILE)
    if target.public:
        shutil.copyfile(target.directory / MODEL_FILE, folder / MODEL_FILE)
    return dest


def _chunks_of(source, relative: str):
    """The source file's bytes in 1 MiB blocks; a read error is the probe's output at fault."""
    while True:
        try:
            chunk = source.read(1 << 20)
        except OSError as exc:
            raise ImageSetRejected(f"{relative!r} cannot be read ({exc.strerror})") from None
        if not chunk:
            return
        yield chunk


def _copy_out(image_set, source: Path, out_dir: Path) -> None:
    """Copy manifest.json and the listed images into `out_dir`, all or nothing.

    A source the probe made unreadable since validation is the probe's fault (ImageSetRejected);
    a failure to write the platform's own storage stays an OSError (a platform fault).
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        for relative in dict.fromkeys(["manifest.json", *(item.image for item in image_set.items)]):
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with open_listed_file(source, relative) as src, open(target, "xb") as dst:
                dst.writelines(_chunks_of(src, relative))
        os.chmod(staging, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def run_probe(
    probe_path: str | os.PathLike,
    *,
    backend: str | SandboxBackend | None = None,
    limits: Limits | None = None,
    out_dir: str | os.PathLike,
    run_id: str | None = None,
    should_cancel: Callable[[], bool] | None = None,
    target_model: TargetModelView | None = None,
    seed: int | None = None,
) -> RunResult:
    """Run the probe sandboxed; on success its validated image set is at `out_dir`.

    `target_model`: a registered model the probe sees at /models (PROBEKIT_MODELS_DIR), by its visibility.
    `seed`: a confirmatory run (replication) with this PROBE_SEED and no target model at all: no
    /models, the built-in weights hidden, probekit's crop helpers refused.
    """
    if seed is not None:
        target_model = None
    limits = limits or DEFAULT_LIMITS
    run_id = run_id or uuid.uuid4().hex
    out_dir = Path(out_dir)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="cropbias-probe-"))
    os.chmod(work, 0o755)
    # A signal ending this process removes the unpacked probe too (the backend ends its sandbox).
    with live_sandbox(f"work:{work}", functools.partial(shutil.rmtree, work, ignore_errors=True)):
        try:
            return _run_unpacked(probe_path, work, backend=backend, limits=limits, out_dir=out_dir,
                                 run_id=run_id, should_cancel=should_cancel, started=started,
                                 target_model=target_model, env=confirmatory_env(seed) if seed is not None else None)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _run_unpacked(probe_path, work: Path, *, backend, limits: Limits, out_dir: Path, run_id: str,
                  should_cancel, started: float, target_model: TargetModelView | None,
                  env: dict[str, str] | None) -> RunResult:
    try:
        sandbox = backend if isinstance(backend, SandboxBackend) else get_backend(backend or DEFAULT_BACKEND)
        probe_dir = unpack_probe(Path(probe_path), work / "probe")
    except ProbeFileError as exc:
        return RunResult(RunStatus.REJECTED, None, time.monotonic() - started, error=f"probe file: {exc}")
    except PlatformError as exc:
        return RunResult(RunStatus.PLATFORM_ERROR, None, time.monotonic() - started, error=str(exc))
    try:
        models_dir = target_model_view(target_model, work / "models") if target_model else None
        result = sandbox.execute(probe_dir, limits=limits, run_id=run_id, should_cancel=should_cancel,
                                 models_dir=models_dir, **({"env": env} if env else {}))
    except PlatformError as exc:
        logger.warning("sandbox %s could not run %s: %s", sandbox.name, run_id, exc)
        return RunResult(RunStatus.PLATFORM_ERROR, None, time.monotonic() - started, error=str(exc),
                         details={"backend": sandbox.name})
    result.details = {"backend": sandbox.name, **result.details}
    try:
        if result.status != RunStatus.OK:
            return result
        try:
            image_set = validate_image_set(
                result.output_dir, max_images=limits.max_images, max_pixels=limits.max_pixels,
                max_total_bytes=limits.output_bytes,
            )
            _copy_out(image_set, Path(result.output_dir), out_dir)
        except ImageSetRejected as exc:
            result.status, result.error = RunStatus.REJECTED, str(exc)
            return result
        result.image_set_path, result.n_images = out_dir.resolve(), len(image_set.items)
        result.image_set = dataclasses.replace(image_set, root=result.image_set_path)
        result.details["manifest_sha256"] = image_set.manifest_sha256
        return result
    finally:
        result.cleanup()


def reap_stray_sandboxes(*, older_than_s: float) -> list[str]:
    """End this deployment's sandboxes left by dead workers (every backend set up on this host)."""
    reaped = []
    for name in {DEFAULT_BACKEND, "bwrap"}:
        try:
            backend = get_backend(name)
        except PlatformError:
            continue
        usable, _reason = backend.available()
        if usable:
            reaped += backend.reap(older_than_s)
    return reaped


__all__ = ["RunResult", "get_backend", "reap_stray_sandboxes", "run_probe"]
