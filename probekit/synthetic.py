"""Synthetic image sets: small, seeded, built with probekit's own writer.

Known answers for checking a target model or the measurement (the tests and the benches use
them): textured subjects every saliency model notices against flat ones it should not.
"""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from probekit.writer import ImageSetWriter


def textured_square(size: int, seed: int) -> Image.Image:
    """High-contrast dots: what every saliency model notices."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    for _ in range(size * size // 120):
        x, y, r = rng.randrange(size), rng.randrange(size), rng.randint(2, max(3, size // 24))
        shade = rng.choice([0, 255])
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(shade, shade, shade))
    return image


def flat_square(size: int, seed: int) -> Image.Image:
    rng = random.Random(seed)
    base = 120 + rng.randint(0, 16)
    return Image.new("RGB", (size, size), (base, base, base))


def contrast_composites(out: Path, *, n: int = 16, size: int = 96, seed: int = 0) -> Path:
    """Composites where the textured ("high") subject must win over the flat ("low") one."""
    with ImageSetWriter(out, title="High vs low contrast", attribute="contrast", groups=["high", "low"]) as writer:
        for k in range(n):
            pad = size // 6
            canvas = Image.new("RGB", (2 * size + 3 * pad, size + 2 * pad), (128, 128, 128))
            high, low = textured_square(size, seed + k), flat_square(size, seed + k)
            left_high = k % 2 == 0
            slots = [(pad, pad), (2 * pad + size, pad)]
            (hx, hy), (lx, ly) = slots if left_high else slots[::-1]
            canvas.paste(high, (hx, hy))
            canvas.paste(low, (lx, ly))
            writer.add(canvas, id=f"c{k:03d}", regions=[("high", (hx, hy, size, size)), ("low", (lx, ly, size, size))])
    return out


def identical_composites(out: Path, *, n: int = 16, size: int = 96, seed: int = 0) -> Path:
    """Both groups are the same image: any preference is pure noise (parity must be covered)."""
    with ImageSetWriter(out, title="Same image, two labels", attribute="none", groups=["a", "b"]) as writer:
        for k in range(n):
            pad = size // 6
            canvas = Image.new("RGB", (2 * size + 3 * pad, size + 2 * pad), (128, 128, 128))
            subject = textured_square(size, seed + k)
            canvas.paste(subject, (pad, pad))
            canvas.paste(subject, (2 * pad + size, pad))
            regions = [("a", (pad, pad, size, size)), ("b", (2 * pad + size, pad, size, size))]
            writer.add(canvas, id=f"c{k:03d}", regions=regions if k % 2 else regions[::-1])
    return out


def single_subjects(out: Path, *, n: int = 6, size: int = 80, seed: int = 0, paired: bool = True) -> Path:
    """Single-subject images for `compose: "pairs"` (and `base` tuples when paired)."""
    with ImageSetWriter(out, title="Singles", attribute="contrast", groups=["high", "low"], compose="pairs") as writer:
        for k in range(n):
            for group, maker in (("high", textured_square), ("low", flat_square)):
                canvas = Image.new("RGB", (size + 20, size + 20), (128, 128, 128))
                canvas.paste(maker(size, seed + k), (10, 10))
                writer.add(canvas, id=f"{group}-{k:02d}", base=f"s{k:02d}" if paired else None,
                           regions=[(group, (10, 10, size, size))])
    return out
