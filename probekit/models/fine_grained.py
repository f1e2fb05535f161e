"""Fine-grained static saliency (Montabone & Soto 2010), OpenCV contrib's implementation."""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from probekit.models._base import ModelCard, TargetModel, version_hash

ALGORITHM_REVISION = 1
DEFAULT_MAX_SIDE = 256
# Relative to a 256 px input: enough to merge the centre-surround speckle into one peak.
BLUR_SIGMA_AT_256 = 2.0

CARD = ModelCard(
    name="fine-grained",
    summary="Centre-surround intensity differences over many scales (integral images), as in human-detection "
    "front ends; OpenCV contrib's StaticSaliencyFineGrained.",
    paper="S. Montabone and A. Soto, 'Human detection using a mobile platform and novel features derived from "
    "a visual saliency mechanism', Image and Vision Computing 28(3), 2010.",
    input_size="image resized so its longer side is 256 px (variants: @Npx), aspect ratio kept; "
    "OpenCV converts it to grey",
    licence="OpenCV (Apache-2.0); wrapper in this project",
    limits="Intensity only: colour, skin tone at equal luminance and semantics are invisible to it. It fires on "
    "any local contrast (text, edges, noise), so busy backgrounds compete with subjects. Precision of the salient "
    "point is one input pixel (1/256 of the longer side).",
    smoothing="map min-max normalised, then Gaussian blur σ = 2 input pixels (scaled with @Npx)",
)


def _detector():
    import cv2

    # Created per call: the OpenCV object keeps internal buffers and is not safe to share across threads.
    return cv2.saliency.StaticSaliencyFineGrained_create()


class FineGrained(TargetModel):
    base_name = "fine-grained"
    card = CARD

    def __init__(self, max_side: int = DEFAULT_MAX_SIDE, variant: str | None = None):
        import cv2

        self.max_side = max_side
        self.variant = variant
        self._sigma = BLUR_SIGMA_AT_256 * max_side / DEFAULT_MAX_SIDE
        self._version = version_hash(self.base_name, ALGORITHM_REVISION, max_side, self._sigma, cv2.__version__)

    @property
    def version(self) -> str:
        return self._version

    def _saliency_small(self, image: Image.Image) -> np.ndarray:
        width, height = image.size
        scale = self.max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = image.convert("RGB").resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
        bgr = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
        ok, saliency = _detector().computeSaliency(bgr)
        if not ok:
            raise RuntimeError("OpenCV StaticSaliencyFineGrained failed on this image")
        saliency = np.asarray(saliency, dtype=np.float32)
        low, high = float(saliency.min()), float(saliency.max())
        saliency = (saliency - low) / (high - low) if high > low else np.zeros_like(saliency)
        saliency = ndimage.gaussian_filter(saliency, sigma=self._sigma, mode="nearest")
        peak = float(saliency.max())
        return saliency / peak if peak > 0 else saliency
