"""The crop rule of Twitter's image-crop-analysis, and top-k salient points.

Ratio r = height / width of the wanted crop. For an image W×H with salient point (x, y):
if r < H/W keep the full width and fit a window of height round(r·W) around y, else keep the
full height and fit a window of width round(H/r) around x. "Fit" starts at centre − size // 2
and slides back inside the image when it overhangs. `round` is Python's (half to even).
Reference: Yee, Tantipongpipat & Mishra, "Image Cropping on Twitter: Fairness Metrics, their
Limitations, and the Importance of Representation, Design, and Agency" (CSCW 2021), and
github.com/twitter-research/image-crop-analysis.
"""
from __future__ import annotations

import numpy as np

from probekit.confirmatory import refuse_target

DEFAULT_RATIOS: tuple[float, ...] = (0.56, 1.0, 1.14, 2.0)

INVALID_RATIO = "aspect ratio must be a positive number (height / width), got {ratio!r}"
INVALID_SIZE = "image size must be positive, got {width}×{height}"


def ratio_key(ratio: float) -> str:
    """The key a ratio has in results and documents: Python's str(float(r)) ("1.0", "0.56")."""
    return str(float(ratio))


def _fit(centre: int, size: int, limit: int) -> int:
    start = centre - size // 2
    return max(0, min(start, limit - size))


def crop_window(width: int, height: int, x: int, y: int, ratio: float) -> tuple[int, int, int, int]:
    """Crop window (left, top, width, height) for salient point (x, y) and ratio h/w.

    Parameters
    ----------
    width, height : image size in pixels.
    x, y : salient point in image coordinates.
    ratio : wanted crop height / width.
    """
    refuse_target("crop_window")
    if width <= 0 or height <= 0:
        raise ValueError(INVALID_SIZE.format(width=width, height=height))
    if not ratio or ratio <= 0 or not np.isfinite(ratio):
        raise ValueError(INVALID_RATIO.format(ratio=ratio))
    if ratio < height / width:
        crop_h = min(height, max(1, round(ratio * width)))
        return 0, _fit(int(y), crop_h, height), width, crop_h
    crop_w = min(width, max(1, round(height / ratio)))
    return _fit(int(x), crop_w, width), 0, crop_w, height


def top_points(saliency: np.ndarray, k: int = 5, radius: int | None = None) -> list[tuple[int, int, float]]:
    """The k highest peaks of a saliency map, by greedy non-maximum suppression.

    Each peak suppresses a square of half-side `radius` (default: 1/10 of the map's larger side)
    around itself before the next one is taken. Returns [(x, y, score), ...], best first; ties
    go to the first in row-major order, as numpy's argmax does.
    """
    if k <= 0:
        return []
    if radius is None:
        radius = max(1, max(saliency.shape) // 10)
    work = np.array(saliency, dtype=np.float32, copy=True)
    height, width = work.shape
    points = []
    for _ in range(k):
        index = int(np.argmax(work))
        y, x = divmod(index, width)
        score = float(work[y, x])
        if not np.isfinite(score) or score == -np.inf:
            break
        points.append((x, y, round(score, 6)))
        work[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1] = -np.inf
    return points
