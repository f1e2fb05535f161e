"""The smartcrop heuristic (PyPI `smartcrop`, a port of smartcrop.js): a cropper that picks its own windows."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from probekit.crop import DEFAULT_RATIOS, crop_window, ratio_key
from probekit.models._base import CropResult, ModelCard, TargetModel, version_hash

ALGORITHM_REVISION = 1
DEFAULT_ANALYSE_SIZE = 256
# smartcrop's own default stride between candidate windows, in analysed pixels.
WINDOW_STEP = 8

CARD = ModelCard(
    name="smartcrop",
    summary="Content-aware cropping heuristic used in production image pipelines: detects skin-coloured, "
    "detailed (edges) and saturated pixels, then slides candidate windows and keeps the one whose weighted "
    "feature sum (favouring the centre and the rule of thirds, penalising edges) scores highest.",
    paper="J. Wagner, smartcrop.js (github.com/jwagner/smartcrop.js, 2014), Python port smartcrop.py "
    "(github.com/smartcrop/smartcrop.py, PyPI smartcrop 0.5.0); no peer-reviewed paper.",
    input_size="image resized (Lanczos) so its longer side is 256 px (variants: @Npx); features scored on an "
    "8× coarser grid, candidate windows every 8 analysed pixels",
    licence="smartcrop.py MIT; wrapper in this project",
    limits="Its skin detector is a fixed colour: pixels whose normalised RGB lies near (0.78, 0.57, 0.44) "
    "with luminance ≥ 0.2 count as skin, so it scores lighter and darker skin differently by construction — "
    "a documented source of bias. Windows move in steps of 8 analysed pixels (1/32 of the longer side). "
    "The crop window is its own choice, not the salient-point rule; its salient point is the centre of its "
    "1.0 (square) window, and its map is the combined feature map it scores, so top points are coarse.",
    smoothing="none beyond the library's Lanczos downsampling of the feature image by 8",
)


@dataclass(frozen=True)
class _Features:
    """One image as smartcrop sees it: analysed size and the weighted feature grid it scores windows on."""

    width: int
    height: int
    grid: np.ndarray


class SmartCrop(TargetModel):
    base_name = "smartcrop"
    card = CARD

    def __init__(self, analyse_size: int = DEFAULT_ANALYSE_SIZE, variant: str | None = None):
        import smartcrop

        self.analyse_size = analyse_size
        self.variant = variant
        self._cropper = smartcrop.SmartCrop()
        self._pinned = threading.local()
        self._version = version_hash(self.base_name, ALGORITHM_REVISION, analyse_size, WINDOW_STEP,
                                     _library_version())

    @property
    def version(self) -> str:
        return self._version

    def _features(self, image: Image.Image) -> _Features:
        pinned = getattr(self._pinned, "value", None)
        if pinned is not None and pinned[0] is image:
            return pinned[1]
        width, height = image.size
        scale = self.analyse_size / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        cropper = self._cropper
        # The same steps as SmartCrop.analyse, done once per image instead of once per ratio.
        prepared = cropper.prepare_features_image(small)
        coarse = prepared.resize((math.ceil(size[0] / cropper.score_down_sample),
                                  math.ceil(size[1] / cropper.score_down_sample)), Image.Resampling.LANCZOS)
        return _Features(width=size[0], height=size[1], grid=cropper.precompute_features(coarse))

    def _saliency_small(self, image: Image.Image) -> np.ndarray:
        grid = self._features(image).grid
        peak = float(grid.max())
        return (grid / peak if peak > 0 else np.zeros_like(grid)).astype(np.float32)

    def _window(self, image: Image.Image, features: _Features, ratio: float) -> tuple[int, int, int, int]:
        width, height = image.size
        _left, _top, crop_w, crop_h = crop_window(width, height, 0, 0, ratio)
        # The same window shape on the analysed image: full along the dimension the crop rule keeps.
        if crop_w == width:
            small_w, small_h = features.width, min(features.height, max(1, round(ratio * features.width)))
        else:
            small_w, small_h = min(features.width, max(1, round(features.height / ratio))), features.height
        cropper = self._cropper
        down = cropper.score_down_sample
        stub = _Size(features.width, features.height)
        candidates = cropper.crops(stub, small_w, small_h, max_scale=1, min_scale=1, num_scale_steps=1,
                                   step=WINDOW_STEP)
        prescore = float(np.sum(features.grid)) * cropper.outside_importance
        cw, ch = max(1, int(small_w / down)), max(1, int(small_h / down))
        importance = cropper.get_importance(width=cw, height=ch) - cropper.outside_importance
        best = max(candidates, key=lambda c: cropper.score(
            features.grid, prescore, (int(c["x"] / down), int(c["y"] / down), cw, ch), importance))
        left = min(max(0, round(best["x"] * width / features.width)), width - crop_w)
        top = min(max(0, round(best["y"] * height / features.height)), height - crop_h)
        return left, top, crop_w, crop_h

    def crop_windows(self, image: Image.Image, point: tuple[int, int], ratios) -> dict[str, tuple[int, int, int, int]]:
        """smartcrop's own best window per ratio, the size the crop rule gives; `point` is not used."""
        features = self._features(image)
        return {ratio_key(r): self._window(image, features, float(r)) for r in ratios}

    def salient_point(self, image: Image.Image, saliency: np.ndarray) -> tuple[int, int]:
        """The centre of its square (1.0) window."""
        left, top, crop_w, crop_h = self._window(image, self._features(image), 1.0)
        return left + crop_w // 2, top + crop_h // 2

    def analyze(self, image: Image.Image, ratios=DEFAULT_RATIOS, *, top_k: int = 5, keep_map: bool = False) -> CropResult:
        image = image if image.mode == "RGB" else image.convert("RGB")
        # Saliency, point and windows all read the same features: compute them once for this call.
        self._pinned.value = (image, self._features(image))
        try:
            return super().analyze(image, ratios, top_k=top_k, keep_map=keep_map)
        finally:
            self._pinned.value = None


@dataclass(frozen=True)
class _Size:
    """What SmartCrop.crops reads of an image: its size."""

    width: int
    height: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smartcrop")
    except PackageNotFoundError:
        return "unknown"
