"""What every target model offers: a saliency map, and crops derived from it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from probekit.crop import DEFAULT_RATIOS, crop_window, ratio_key, top_points

UNKNOWN_VARIANT = "unknown variant {variant!r} of {model}; known variants: {known}"


@dataclass(frozen=True)
class ModelCard:
    """What a target model is, so a judge knows what a finding was measured on."""

    name: str
    summary: str
    paper: str
    input_size: str
    licence: str
    limits: str
    smoothing: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CropResult:
    """One image through one model: salient point, runner-ups and one window per ratio."""

    model: str
    model_version: str
    width: int
    height: int
    salient_point: tuple[int, int]
    top_points: list[tuple[int, int, float]]
    crops: dict[str, tuple[int, int, int, int]]
    saliency: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        """The fields of `python -m probekit crop --json`."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "width": self.width,
            "height": self.height,
            "salient_point": [int(self.salient_point[0]), int(self.salient_point[1])],
            "top_points": [[int(x), int(y), float(s)] for x, y, s in self.top_points],
            "crops": {key: [int(v) for v in window] for key, window in self.crops.items()},
        }


def version_hash(*parts: object) -> str:
    """A short content hash naming one exact model configuration."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


class TargetModel:
    """A saliency cropper. Subclasses implement `_saliency_small`; the rest is shared.

    `name` is the full name (`u2netp@int8`), `base_name` the registered model, `variant` the
    part after `@` or None, `version` a hash of everything that changes its output.
    """

    base_name: str = ""
    card: ModelCard
    variant: str | None = None

    @property
    def name(self) -> str:
        return f"{self.base_name}@{self.variant}" if self.variant else self.base_name

    @property
    def version(self) -> str:
        raise NotImplementedError

    def _saliency_small(self, image: Image.Image) -> np.ndarray:
        """A float32 map at the model's own resolution, with the image's aspect ratio."""
        raise NotImplementedError

    def saliency(self, image: Image.Image) -> np.ndarray:
        """The saliency map at the image's size, float32 in [0, 1]."""
        import cv2

        small = self._saliency_small(image)
        width, height = image.size
        if small.shape != (height, width):
            small = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(small, dtype=np.float32)

    def crop_windows(self, image: Image.Image, point: tuple[int, int], ratios) -> dict[str, tuple[int, int, int, int]]:
        width, height = image.size
        return {ratio_key(r): crop_window(width, height, point[0], point[1], r) for r in ratios}

    def salient_point(self, image: Image.Image, saliency: np.ndarray) -> tuple[int, int]:
        index = int(np.argmax(saliency))
        y, x = divmod(index, saliency.shape[1])
        return x, y

    def analyze(self, image: Image.Image, ratios=DEFAULT_RATIOS, *, top_k: int = 5, keep_map: bool = False) -> CropResult:
        """Salient point, top-k points and one crop window per ratio for an RGB image."""
        image = image if image.mode == "RGB" else image.convert("RGB")
        saliency = self.saliency(image)
        point = self.salient_point(image, saliency)
        return CropResult(
            model=self.name, model_version=self.version, width=image.size[0], height=image.size[1],
            salient_point=point, top_points=top_points(saliency, top_k),
            crops=self.crop_windows(image, point, ratios), saliency=saliency if keep_map else None,
        )

    def crop(self, image: Image.Image, ratios=DEFAULT_RATIOS) -> CropResult:
        return self.analyze(image, ratios)
