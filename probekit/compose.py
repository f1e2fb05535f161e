"""Two images joined side by side or stacked: the layout of the Twitter-paper comparison.

Used by probes that build their own composites and by the platform when it composes pairs
(`compose: "pairs"`), so both lay images out the same way.
"""
from __future__ import annotations

from PIL import Image


def join_pair(first: Image.Image, second: Image.Image, *, horizontal: bool, padding: int = 0,
              background=(255, 255, 255)) -> tuple[Image.Image, list[tuple[int, int]]]:
    """`first` left of (or above) `second`, `padding` around and between, centred across.

    Returns the canvas and the two images' top-left origins, first slot first.
    """
    parts = (first, second)
    if horizontal:
        size = (sum(p.width for p in parts) + 3 * padding, max(p.height for p in parts) + 2 * padding)
    else:
        size = (max(p.width for p in parts) + 2 * padding, sum(p.height for p in parts) + 3 * padding)
    canvas = Image.new("RGB", size, tuple(background))
    origins, offset = [], padding
    for part in parts:
        if horizontal:
            origin = (offset, padding + (size[1] - 2 * padding - part.height) // 2)
            offset += part.width + padding
        else:
            origin = (padding + (size[0] - 2 * padding - part.width) // 2, offset)
            offset += part.height + padding
        canvas.paste(part, origin)
        origins.append(origin)
    return canvas, origins
