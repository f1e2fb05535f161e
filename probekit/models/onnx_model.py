"""Any ONNX saliency network, driven by its card (docs/models.md), with its compressed variants."""
from __future__ import annotations

import hashlib
import os
import threading

import numpy as np
from PIL import Image
from scipy import ndimage

from probekit.models._base import UNKNOWN_VARIANT, TargetModel, version_hash
from probekit.models._card import CHANNELS, InputSpec, OnnxCard, OutputSpec
from probekit.models._compress import Variant, compression_of, derive, parse_variant, variant_names

# Bump when preprocessing or postprocessing changes the map.
ONNX_REVISION = 1
RESAMPLING = {"lanczos": Image.Resampling.LANCZOS, "bilinear": Image.Resampling.BILINEAR,
              "bicubic": Image.Resampling.BICUBIC}
NOT_A_MAP = "output {index} is not a saliency map: shape {shape} (expected H×W, 1×H×W or 1×1×H×W, H and W ≥ 2)"
# An organizer's model gets this long per image, at registration and at measurement; a run past it
# is stopped (onnxruntime's terminate flag, which a Loop checks on every iteration).
SECONDS_PER_IMAGE = float(os.environ.get("PROBEKIT_MODEL_SECONDS_PER_IMAGE", 10))
OVER_BUDGET = ("model {name!r} ran longer than its budget of {budget:g} s on one image and was stopped; "
               "the challenge's organizers must register a model that answers within it")
NOT_FINITE_MAP = "model {name!r} returned a saliency map with NaN or infinite values"


class ModelFault(RuntimeError):
    """An organizer's model misbehaved on an image (over its time budget, a map that is not finite).

    The message names the model: the measurement ends `failed` with it, never a retried platform fault."""

_session_cache: dict[str, object] = {}
_lock = threading.Lock()


def session_for(data: bytes, digest: str):
    """One InferenceSession per model per process; one thread keeps the output bit-identical."""
    import onnxruntime as ort

    with _lock:
        if digest not in _session_cache:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.log_severity_level = 3
            _session_cache[digest] = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        return _session_cache[digest]


def prepare_input(image: Image.Image, spec: InputSpec, size: tuple[int, int]) -> np.ndarray:
    """The network's float32 input: resized to `size` (w, h), scaled, mean/std, in the card's layout."""
    mode = "L" if spec.channels == "L" else "RGB"
    pixels = np.asarray(image.convert(mode).resize(size, RESAMPLING[spec.resize]), dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if spec.channels == "BGR":
        pixels = pixels[..., ::-1]
    if spec.scale == "max":
        peak = float(pixels.max())
        pixels = pixels / (peak if peak > 0 else 1.0)
    else:
        pixels = pixels * np.float32(spec.scale)
    pixels = (pixels - np.array(spec.mean, dtype=np.float32)) / np.array(spec.std, dtype=np.float32)
    pixels = pixels.transpose(2, 0, 1) if spec.layout == "NCHW" else pixels
    return np.ascontiguousarray(pixels[None], dtype=np.float32)


def as_map(output, index: int) -> np.ndarray:
    """The 2-D map inside an output of shape H×W, 1×H×W, 1×1×H×W or 1×H×W×1."""
    array = np.asarray(output)
    shape = tuple(array.shape)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or min(array.shape) < 2 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(NOT_A_MAP.format(index=index, shape=list(shape)))
    return array.astype(np.float32)


def read_map(output, spec: OutputSpec, blur_scale: float) -> np.ndarray:
    """The card's output, normalised to [0, 1] and blurred (σ scaled with the run size)."""
    prediction = as_map(output, spec.index)
    if spec.normalize == "minmax":
        low, high = float(prediction.min()), float(prediction.max())
        prediction = (prediction - low) / (high - low) if high > low else np.zeros_like(prediction)
    elif spec.normalize == "sigmoid":
        prediction = (1.0 / (1.0 + np.exp(-prediction.astype(np.float64)))).astype(np.float32)
    else:
        prediction = np.clip(prediction, 0.0, 1.0)
    if spec.blur_sigma > 0:
        prediction = ndimage.gaussian_filter(prediction, sigma=spec.blur_sigma * blur_scale, mode="nearest")
    return prediction.astype(np.float32)


class OnnxModel(TargetModel):
    """An ONNX network with a card; `variant` is int8, fp16, prune<NN> or (dynamic input) <N>px.

    `sparsity` is the achieved share of zero weights of a prune<NN> variant (None otherwise),
    `compression` how many times smaller or cheaper than the base (it orders the compression curve).
    """

    def __init__(self, base_name: str, source: bytes, onnx_card: OnnxCard, variant: str | None = None):
        self.base_name = base_name
        self.variant = variant
        self.onnx_card = onnx_card
        self.source = source
        self.source_sha256 = hashlib.sha256(source).hexdigest()
        spec = onnx_card.input
        self._parsed: Variant | None = None
        if variant is not None:
            self._parsed = parse_variant(variant, dynamic=self.dynamic)
            if self._parsed is None:
                raise ValueError(UNKNOWN_VARIANT.format(variant=variant, model=base_name,
                                                             known=", ".join(variant_names(self.dynamic))))
        self.run_size = ((self._parsed.amount, self._parsed.amount) if self._parsed and self._parsed.kind == "px"
                         else (spec.size or spec.native))
        self._bytes: tuple[bytes, str] | None = None
        self.sparsity: float | None = None
        self.variant_note = ""
        if self._parsed is not None and self._parsed.kind == "prune":
            self.model_bytes()  # the card records the achieved sparsity
            self.variant_note = f"; variant {variant}: global magnitude pruning, achieved sparsity {self.sparsity:.2%}"
        elif self._parsed is not None:
            self.variant_note = f"; variant {variant}"
        self.card = onnx_card.model_card(self.name, self.variant_note)

    @property
    def dynamic(self) -> bool:
        return self.onnx_card.input.size is None

    @property
    def channels(self) -> int:
        return CHANNELS[self.onnx_card.input.channels]

    @property
    def compression(self) -> float:
        return compression_of(self._parsed, sparsity=self.sparsity, native=self.onnx_card.input.native)

    def model_bytes(self) -> tuple[bytes, str]:
        """The ONNX model this variant runs, and its sha256 (derived once, cached by content)."""
        if self._bytes is None:
            data = self.source
            if self._parsed is not None:
                data, self.sparsity = derive(self.source, self._parsed, layout=self.onnx_card.input.layout)
            self._bytes = (data, hashlib.sha256(data).hexdigest())
        return self._bytes

    @property
    def version(self) -> str:
        _data, digest = self.model_bytes()
        return version_hash("onnx", self.source_sha256, self.onnx_card.behaviour(), self.variant or "", digest,
                            self.sparsity, ONNX_REVISION)

    # An organizer's model runs within a time budget per image (registered_model sets it); the
    # built-in ones, whose speed the platform knows, run without one.
    budget_s: float | None = None

    def run(self, image: Image.Image, budget_s: float | None = None) -> np.ndarray:
        """The card's output of the network for one image, as the network returns it.

        Stopped after `budget_s` (else the model's own budget, if any) with ModelFault naming the model."""
        import onnxruntime as ort

        data, digest = self.model_bytes()
        session = session_for(data, digest)
        feed = {session.get_inputs()[0].name: prepare_input(image, self.onnx_card.input, self.run_size)}
        budget = self.budget_s if budget_s is None else budget_s
        output_name = session.get_outputs()[self.onnx_card.output.index].name
        if budget is None:
            return session.run([output_name], feed)[0]
        options = ort.RunOptions()
        timer = threading.Timer(budget, setattr, args=(options, "terminate", True))
        timer.daemon = True
        timer.start()
        try:
            return session.run([output_name], feed, options)[0]
        except Exception:
            if options.terminate:
                raise ModelFault(OVER_BUDGET.format(name=self.name, budget=budget)) from None
            raise
        finally:
            timer.cancel()

    def _saliency_small(self, image: Image.Image) -> np.ndarray:
        blur_scale = self.run_size[0] / self.onnx_card.input.native[0]
        saliency = read_map(self.run(image), self.onnx_card.output, blur_scale)
        if not np.isfinite(saliency).all():
            raise ModelFault(NOT_FINITE_MAP.format(name=self.name))
        return saliency
