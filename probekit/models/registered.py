"""Organizers' ONNX models: registered under PROBEKIT_MODELS_DIR/<name>/ (model.onnx + card.json), frozen."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from probekit.models._card import CHANNELS, CardError, load_card
from probekit.models.onnx_model import SECONDS_PER_IMAGE, ModelFault, OnnxModel, as_map

MODELS_DIR_ENV = "PROBEKIT_MODELS_DIR"
MODEL_FILE, CARD_FILE = "model.onnx", "card.json"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
MAX_MODEL_BYTES = 256 * 1024 * 1024
# One run per check image, one thread: a slower model would make a measurement take hours. The same
# budget stops a run at measurement (onnx_model.SECONDS_PER_IMAGE).
MAX_SECONDS_PER_IMAGE = SECONDS_PER_IMAGE

BAD_NAME = "model name {name!r} must be 2–64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
TAKEN_BY_BUILTIN = "model name {name!r} is a built-in model; choose another name"
UNREADABLE = "cannot read {what} {path}: {error}"
TOO_LARGE = "the model file is too large: {size} bytes, the cap is {cap} bytes"
NOT_ONNX = "not an ONNX model: {error}"
NO_INPUT = "the model must take exactly one input image; it takes {n}"
WRONG_RANK = "the model's input {input!r} must have rank 4 ({layout}); it has rank {rank}"
WRONG_CHANNELS = "the model's input {input!r} has {found} channels where the card's {channels} needs {needed}"
WRONG_SIZE = "the model's input {input!r} is {found} (width×height) where card input.size says {card}"
NOT_LOADABLE = "onnxruntime cannot load the model: {error}"
NO_SUCH_OUTPUT = "card: output.index is {index} but the model has {n} output(s)"
RUN_FAILED = "the model fails on a test image: {error}"
NOT_FINITE = "output {index} has NaN or infinite values on a test image"
NON_DETERMINISTIC = "the model is not deterministic: two runs on the same image differ"
TOO_SLOW = "the model is too slow: {seconds:.1f} s on the 320×240 test image, the cap is {cap:g} s"
STOPPED = "model {name!r} is too slow: stopped after {cap:g} s on the {what} test image, the cap is {cap:g} s"
FROZEN = ("{name!r} is already registered with different bytes (sha256:{old}); a registered version is frozen: "
          "register the new one under another name")


class ModelRejected(ValueError):
    """A model or card that cannot be registered; the message is one line naming the problem."""


def models_dir() -> Path | None:
    """Where registered models live (PROBEKIT_MODELS_DIR), or None when it is not set."""
    value = os.environ.get(MODELS_DIR_ENV)
    return Path(value) if value else None


def registered_names() -> list[str]:
    """The names of the registered models, sorted."""
    folder = models_dir()
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if NAME.match(p.name) and (p / MODEL_FILE).is_file())


def registered_file(name: str) -> Path | None:
    """The ONNX file of the registered model `name`, or None when no such model is registered."""
    folder = models_dir()
    if folder is None or not NAME.match(name) or not (folder / name / MODEL_FILE).is_file():
        return None
    return folder / name / MODEL_FILE


def registered_model(name: str, variant: str | None) -> OnnxModel | None:
    """The registered model `name` (with its variant), or None when no such model is registered."""
    path = registered_file(name)
    if path is None:
        return None
    model = OnnxModel(name, path.read_bytes(), load_card((path.parent / CARD_FILE).read_text(encoding="utf-8")), variant)
    model.budget_s = SECONDS_PER_IMAGE  # an organizer's model is stopped past it, naming the model
    return model


def example_variants(model: OnnxModel) -> list[str]:
    """The variants listed for a model: every kind, with the usual amounts."""
    names = ["int8", "fp16", "prune50", "prune90"]
    if model.dynamic:
        names.append(f"{max(16, model.onnx_card.input.native[0] // 2)}px")
    return names


def check_image() -> Image.Image:
    """The fixed 320×240 image every model is tried on: a gradient with one disc."""
    ramp = np.linspace(40, 200, 320, dtype=np.float32)
    pixels = np.stack([np.tile(ramp, (240, 1)), np.full((240, 320), 110, np.float32),
                       np.tile(ramp[::-1], (240, 1))], axis=-1).astype(np.uint8)
    image = Image.fromarray(pixels)
    ImageDraw.Draw(image).ellipse((180, 60, 280, 160), fill=(230, 180, 140))
    return image


def budget_images() -> list[tuple[str, Image.Image]]:
    """The images a model must answer within its budget at registration: the check image, and the
    extremes a probe can send (all white, all black, noise), so a model that stalls only on some
    inputs is refused before it measures anyone's set."""
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    return [("white", Image.new("RGB", (320, 240), (255, 255, 255))),
            ("black", Image.new("RGB", (320, 240), (0, 0, 0))),
            ("noise", Image.fromarray(noise))]


def _first_line(exc: Exception) -> str:
    """An exception as one short line (onnx and onnxruntime messages run over many)."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _read(path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ModelRejected(UNREADABLE.format(what=what, path=path, error=exc.strerror or exc)) from None


def _check_graph(data: bytes, card) -> None:
    import onnx

    try:
        model = onnx.load_from_string(data)
        # Almost any bytes parse as some protobuf: a model has an IR version and nodes.
        if model.ir_version <= 0 or not model.graph.node:
            raise ValueError("no ONNX graph in the file")
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - every parser failure is the same refusal
        raise ModelRejected(NOT_ONNX.format(error=_first_line(exc))) from None
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise ModelRejected(NO_INPUT.format(n=len(inputs)))
    spec = card.input
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise ModelRejected(WRONG_RANK.format(input=inputs[0].name, layout=spec.layout, rank=len(dims)))
    c, h, w = (dims[1], dims[2], dims[3]) if spec.layout == "NCHW" else (dims[3], dims[1], dims[2])
    if c is not None and c != CHANNELS[spec.channels]:
        raise ModelRejected(WRONG_CHANNELS.format(input=inputs[0].name, found=c, channels=spec.channels,
                                                  needed=CHANNELS[spec.channels]))
    wanted = spec.size or spec.native
    if (w is not None and w != wanted[0]) or (h is not None and h != wanted[1]):
        raise ModelRejected(WRONG_SIZE.format(input=inputs[0].name, found=f"{w}×{h}", card=list(wanted)))


def _run_within(model: OnnxModel, image: Image.Image, what: str, max_seconds: float):
    try:
        return model.run(image, budget_s=max_seconds)
    except ModelFault:
        raise ModelRejected(STOPPED.format(name=model.name, cap=max_seconds, what=what)) from None
    except Exception as exc:  # noqa: BLE001 - a graph that fails at run time
        raise ModelRejected(RUN_FAILED.format(error=_first_line(exc))) from None


def _check_runs(model: OnnxModel, max_seconds: float) -> None:
    from probekit.models.onnx_model import session_for

    data, digest = model.model_bytes()
    try:
        session = session_for(data, digest)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for every bad graph
        raise ModelRejected(NOT_LOADABLE.format(error=_first_line(exc))) from None
    index = model.onnx_card.output.index
    if index >= len(session.get_outputs()):
        raise ModelRejected(NO_SUCH_OUTPUT.format(index=index, n=len(session.get_outputs())))
    image = check_image()
    started = time.perf_counter()
    first = _run_within(model, image, "320×240", max_seconds)
    seconds = time.perf_counter() - started
    second = _run_within(model, image, "320×240", max_seconds)
    for what, extreme in budget_images():
        _run_within(model, extreme, what, max_seconds)
    if seconds > max_seconds:
        raise ModelRejected(TOO_SLOW.format(seconds=seconds, cap=max_seconds))
    try:
        values = as_map(first, index)
    except ValueError as exc:
        raise ModelRejected(str(exc)) from None
    if not np.isfinite(values).all():
        raise ModelRejected(NOT_FINITE.format(index=index))
    if np.asarray(first).tobytes() != np.asarray(second).tobytes():
        raise ModelRejected(NON_DETERMINISTIC)


def registration(model: OnnxModel) -> dict:
    """What `add_model --json` prints."""
    return {"name": model.name, "version": model.version, "sha256": f"sha256:{model.source_sha256}",
            "variants": [f"{model.name}@{v}" for v in example_variants(model)]}


def register_model(model_path, *, name: str, card_path, builtins=(), folder=None) -> dict:
    """Check an ONNX model and its card, then store both under `folder` (default PROBEKIT_MODELS_DIR)/<name>/.

    Registering the same bytes and card again is a no-op; different ones under a taken name are refused.

    Raises
    ------
    ModelRejected
        One line naming the problem; nothing is written.
    """
    folder = Path(folder) if folder is not None else models_dir()
    if folder is None:
        raise ModelRejected(f"{MODELS_DIR_ENV} is not set: nowhere to register the model")
    if not NAME.match(name):
        raise ModelRejected(BAD_NAME.format(name=name))
    if name in builtins:
        raise ModelRejected(TAKEN_BY_BUILTIN.format(name=name))
    try:
        size = os.stat(model_path).st_size
    except OSError as exc:
        raise ModelRejected(UNREADABLE.format(what="model", path=model_path, error=exc.strerror or exc)) from None
    if size > MAX_MODEL_BYTES:
        raise ModelRejected(TOO_LARGE.format(size=size, cap=MAX_MODEL_BYTES))
    try:
        card_text = _read(card_path, "card").decode("utf-8")
        card = load_card(card_text)
    except (CardError, UnicodeDecodeError) as exc:
        raise ModelRejected(str(exc) if isinstance(exc, CardError) else f"card: not UTF-8 text: {exc}") from None
    data = _read(model_path, "model")
    target = folder / name
    if (target / MODEL_FILE).is_file():
        old = hashlib.sha256((target / MODEL_FILE).read_bytes()).hexdigest()
        old_card = load_card((target / CARD_FILE).read_text(encoding="utf-8"))
        if old != hashlib.sha256(data).hexdigest() or old_card.raw != card.raw:
            raise ModelRejected(FROZEN.format(name=name, old=old))
        return registration(OnnxModel(name, data, card))
    _check_graph(data, card)
    model = OnnxModel(name, data, card)
    _check_runs(model, MAX_SECONDS_PER_IMAGE)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".add-"))
    try:
        (staging / MODEL_FILE).write_bytes(data)
        (staging / CARD_FILE).write_text(json.dumps(card.raw, indent=1, ensure_ascii=False), encoding="utf-8")
        os.rename(staging, target)  # atomic: a model is registered whole or not at all
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelRejected(f"cannot store the model under {target}: {exc.strerror or exc}") from None
    return registration(model)
