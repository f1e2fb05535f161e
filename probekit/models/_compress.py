"""Compressed variants of any ONNX model: int8, fp16, prune<NN>, <N>px; derived once, cached by content."""
from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Bump when a transformation changes its output bytes.
DERIVE_REVISION = 1
PRUNE = re.compile(r"^prune(\d{2})$")
PX = re.compile(r"^(\d{2,4})px$")
PRUNE_RANGE = (10, 95)
PX_RANGE = (16, 2048)
PRUNABLE_OPS = ("Conv", "MatMul", "Gemm")
NOTHING_TO_PRUNE = "the model has no Conv, MatMul or Gemm weights to prune"


@dataclass(frozen=True)
class Variant:
    """What a variant name asks for: `kind` int8 | fp16 | prune | px, and its number (NN or N)."""

    name: str
    kind: str
    amount: int = 0


def variant_names(dynamic: bool) -> list[str]:
    """The variant grammar an ONNX model accepts, as shown in errors."""
    return ["int8", "fp16", "prune<NN> (10–95)", *(["<N>px (16–2048)"] if dynamic else [])]


def parse_variant(variant: str, *, dynamic: bool) -> Variant | None:
    """The variant `variant` names, or None when it is not one an ONNX model has."""
    if variant in ("int8", "fp16"):
        return Variant(variant, variant)
    match = PRUNE.match(variant)
    if match and PRUNE_RANGE[0] <= int(match.group(1)) <= PRUNE_RANGE[1]:
        return Variant(variant, "prune", int(match.group(1)))
    match = PX.match(variant)
    if dynamic and match and PX_RANGE[0] <= int(match.group(1)) <= PX_RANGE[1]:
        return Variant(variant, "px", int(match.group(1)))
    return None


def relax_input_size(model_bytes: bytes, layout: str = "NCHW") -> bytes:
    """The same graph with symbolic height/width, so a fully convolutional net runs at any N×N."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    h, w = (2, 3) if layout == "NCHW" else (1, 2)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[h].dim_param, dims[w].dim_param = "height", "width"
    del model.graph.value_info[:]
    return model.SerializeToString()


def coarse_convs(model_bytes: bytes) -> list[str]:
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
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float64)
        step = (max(float(w.max()), 0.0) - min(float(w.min()), 0.0)) / 255
        if float(np.abs(w).mean()) < step:
            coarse.append(node.name)
    return coarse


def quantize_int8(model_bytes: bytes) -> bytes:
    """Dynamic int8 quantization; the tool needs paths, so it works in a private temp dir and we keep bytes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="probekit-int8-") as tmp:
        source, target = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "int8.onnx")
        with open(source, "wb") as handle:
            handle.write(model_bytes)
        # The tool logs a "consider pre-processing" warning on the root logger on every call.
        logging.disable(logging.WARNING)
        try:
            # uint8 weights: the CPU provider's ConvInteger kernel is uint8×uint8 (int8 weights run ~4× slower).
            quantize_dynamic(source, target, weight_type=QuantType.QUInt8, nodes_to_exclude=coarse_convs(model_bytes))
        finally:
            logging.disable(logging.NOTSET)
        with open(target, "rb") as handle:
            return handle.read()


def convert_fp16(model_bytes: bytes) -> bytes:
    """Weights and arithmetic in float16 (onnxconverter-common), inputs and outputs kept float32."""
    import onnx
    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one "truncated to 1e-07" warning per tiny weight
        model = float16.convert_float_to_float16(onnx.load_from_string(model_bytes), keep_io_types=True)
    return model.SerializeToString()


def _prunable(model) -> list:
    """The float weight initializers of Conv, MatMul and Gemm nodes (biases are not pruned)."""
    weights = {init.name: init for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type in PRUNABLE_OPS:
            for name in node.input[:2]:
                if name in weights and weights[name].data_type == 1 and name not in names:  # 1 = FLOAT
                    names.append(name)
    return [weights[name] for name in names]


def prune_magnitude(model_bytes: bytes, percent: int) -> tuple[bytes, float]:
    """Global magnitude pruning: the `percent`% smallest |w| of all Conv/MatMul/Gemm weights set to 0.

    Returns the pruned model and the achieved sparsity (share of zeros among those weights; ties at
    the threshold and weights already zero can make it a little higher than asked).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    initializers = _prunable(model)
    if not initializers:
        raise ValueError(NOTHING_TO_PRUNE)
    arrays = [numpy_helper.to_array(init) for init in initializers]
    magnitudes = np.concatenate([np.abs(a).ravel() for a in arrays])
    k = int(round(magnitudes.size * percent / 100))
    threshold = np.partition(magnitudes, k - 1)[k - 1] if k > 0 else -1.0
    zeros = 0
    for init, array in zip(initializers, arrays):
        pruned = np.where(np.abs(array) <= threshold, np.float32(0), array).astype(np.float32)
        zeros += int(np.count_nonzero(pruned == 0))
        init.CopyFrom(numpy_helper.from_array(pruned, init.name))
    return model.SerializeToString(), zeros / magnitudes.size


def _tool_versions() -> str:
    versions = []
    for name in ("onnx", "onnxruntime", "onnxconverter-common"):
        try:
            versions.append(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            versions.append("-")
    return ",".join(versions)


def cache_dir() -> Path:
    """Where derived models are kept: PROBEKIT_CACHE_DIR, else PROBEKIT_MODELS_DIR/.derived, else ~/.cache."""
    if os.environ.get("PROBEKIT_CACHE_DIR"):
        return Path(os.environ["PROBEKIT_CACHE_DIR"])
    if os.environ.get("PROBEKIT_MODELS_DIR"):
        return Path(os.environ["PROBEKIT_MODELS_DIR"]) / ".derived"
    return Path.home() / ".cache" / "probekit" / "derived"


_memory: dict[str, tuple[bytes, float | None]] = {}
_lock = threading.Lock()


def _build(source: bytes, variant: Variant, layout: str) -> tuple[bytes, float | None]:
    if variant.kind == "int8":
        return quantize_int8(source), None
    if variant.kind == "fp16":
        return convert_fp16(source), None
    if variant.kind == "prune":
        return prune_magnitude(source, variant.amount)
    return relax_input_size(source, layout), None


def derive(source: bytes, variant: Variant, *, layout: str = "NCHW") -> tuple[bytes, float | None]:
    """The variant's model bytes and, for prune<NN>, its achieved sparsity; cached by content.

    The disk cache is keyed by the source's sha256, the variant and the tools' versions; a cached file
    whose recorded hash does not match is rebuilt, and an unwritable cache only costs the rebuild.
    """
    key = hashlib.sha256(f"{hashlib.sha256(source).hexdigest()}|{variant.name}|{layout}|{DERIVE_REVISION}|"
                         f"{_tool_versions()}".encode()).hexdigest()[:32]
    with _lock:
        if key in _memory:
            return _memory[key]
        folder = cache_dir()
        data_path, meta_path = folder / f"{key}.onnx", folder / f"{key}.meta"
        try:
            digest, sparsity = meta_path.read_text().split()
            data = data_path.read_bytes()
            if hashlib.sha256(data).hexdigest() == digest:
                _memory[key] = (data, None if sparsity == "-" else float(sparsity))
                return _memory[key]
        except (OSError, ValueError):
            pass
        data, achieved = _build(source, variant, layout)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for path, content in ((data_path, data),
                                  (meta_path, f"{hashlib.sha256(data).hexdigest()} {achieved if achieved is not None else '-'}".encode())):
                handle, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
                with os.fdopen(handle, "wb") as out:
                    out.write(content)
                os.replace(tmp, path)
        except OSError:
            pass  # e.g. a read-only home inside the sandbox
        _memory[key] = (data, achieved)
        return _memory[key]


def compression_of(variant: Variant | None, *, sparsity: float | None = None,
                   native: tuple[int, int] | None = None) -> float:
    """How many times smaller (weights) or cheaper (pixels) than the base: orders the compression curve."""
    if variant is None:
        return 1.0
    if variant.kind == "fp16":
        return 2.0
    if variant.kind == "int8":
        return 4.0
    if variant.kind == "prune":
        return 1.0 / max(1e-6, 1.0 - (sparsity if sparsity is not None else variant.amount / 100))
    width, height = native or (variant.amount, variant.amount)
    return (width * height) / (variant.amount * variant.amount)
