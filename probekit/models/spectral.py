"""Spectral residual saliency (Hou & Zhang, CVPR 2007), in numpy."""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from probekit.models._base import ModelCard, TargetModel, version_hash

ALGORITHM_REVISION = 1
DEFAULT_WIDTH = 64
BORDER_FRACTION = 1 / 16

CARD = ModelCard(
    name="spectral-residual",
    summary="Spectral residual of the log-amplitude spectrum of a grey image: what is left after removing "
    "the spectrum's locally averaged (expected) part marks the unexpected, salient regions.",
    paper="X. Hou and L. Zhang, 'Saliency Detection: A Spectral Residual Approach', CVPR 2007.",
    input_size="grey image resized to 64 px wide (variants: @Npx), aspect ratio kept",
    licence="implementation in this project (same licence); the method is published",
    limits="Low resolution: the salient point is only as precise as one input pixel (1/64 of the width). "
    "The FFT treats the image as periodic, so borders light up as artefacts: the map is multiplied by a "
    "raised-cosine taper over the outer 1/16 of each side, so a border peak never beats an inner one of "
    "equal strength. Responds to contrast and texture, not to faces.",
    smoothing="3×3 mean filter on the log amplitude, Gaussian blur σ = 2.5 input pixels on the map",
)


def _taper(length: int, margin: int) -> np.ndarray:
    window = np.ones(length, dtype=np.float32)
    if margin > 0 and length > 2 * margin:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, margin + 2, dtype=np.float32)[1:-1])
        window[:margin] = ramp
        window[-margin:] = ramp[::-1]
    return window


class SpectralResidual(TargetModel):
    base_name = "spectral-residual"
    card = CARD

    def __init__(self, width: int = DEFAULT_WIDTH, variant: str | None = None):
        self.width = width
        self.variant = variant
        self._version = version_hash(self.base_name, ALGORITHM_REVISION, width, BORDER_FRACTION, np.__version__.split(".")[0])

    @property
    def version(self) -> str:
        return self._version

    def _saliency_small(self, image: Image.Image) -> np.ndarray:
        w, h = image.size
        small_w = self.width
        small_h = max(4, round(h * small_w / w))
        grey = image.convert("L").resize((small_w, small_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
        pixels = np.asarray(grey, dtype=np.float64) / 255.0
        spectrum = np.fft.fft2(pixels)
        log_amplitude = np.log(np.abs(spectrum) + 1e-9)
        phase = np.angle(spectrum)
        residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=3, mode="nearest")
        saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
        saliency = ndimage.gaussian_filter(saliency, sigma=2.5, mode="nearest").astype(np.float32)
        margin_y = max(1, round(small_h * BORDER_FRACTION))
        margin_x = max(1, round(small_w * BORDER_FRACTION))
        saliency *= _taper(small_h, margin_y)[:, None] * _taper(small_w, margin_x)[None, :]
        peak = float(saliency.max())
        return saliency / peak if peak > 0 else saliency
