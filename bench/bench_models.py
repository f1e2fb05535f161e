"""Target-model throughput on 1024×768 images: end to end vs the floor, measured in the same run.

End to end = PNG decode from memory + `model.analyze` (map, resize to the image, salient point, top
points, crop windows). Floor = PNG decode + the bare model call (`_saliency_small`). Floor and end to end
alternate image by image, so a busy machine slows both alike and the ratio stays meaningful.
Prints one JSON line per model: {"bench": "models", "model", "images", "images_per_s", "floor_per_s",
"ratio_to_floor"}, and for a variant also "ratio_to_base" (its images/s over its base model's, same run)
and "sparsity" (achieved share of zero weights of a prune<NN>, else null). Goal: ratio_to_floor ≤ 1.3.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probekit.models import get_model  # noqa: E402

WIDTH, HEIGHT = 1024, 768
FAST_MODELS = ["spectral-residual", "spectral-residual@32px", "fine-grained", "fine-grained@128px", "smartcrop",
               "smartcrop@128px"]
# u2netp@160px (about 6 images/s) is left to --models to keep the whole bench under 4 minutes.
U2NETP_MODELS = ["u2netp", "u2netp@int8", "u2netp@fp16", "u2netp@prune50", "u2netp@prune90"]


def generated_png(seed: int) -> bytes:
    """A 1024×768 scene: gradient background, a few discs and boxes, one textured patch; PNG bytes."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, WIDTH, dtype=np.float32)[None, :, None]
    low, high = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    background = (low + (high - low) * ramp).repeat(HEIGHT, 0).astype(np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 6))):
        x, y = int(rng.integers(0, WIDTH - 200)), int(rng.integers(0, HEIGHT - 200))
        size = int(rng.integers(40, 200))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + size, y + size), fill=colour)
    x, y = int(rng.integers(0, WIDTH - 128)), int(rng.integers(0, HEIGHT - 128))
    texture = rng.integers(0, 2, (16, 16, 1), dtype=np.uint8).repeat(8, 0).repeat(8, 1) * 200 + 30
    image.paste(Image.fromarray(np.repeat(texture, 3, axis=2)), (x, y))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def bench_model(name: str, images: list[bytes]) -> dict:
    model = get_model(name)
    model.analyze(decode(images[0]))  # warm-up: sessions, quantization, caches
    end_to_end = floor = 0.0
    for index, data in enumerate(images):
        # Alternate which goes first, so neither always runs on a warm cache.
        order = ("floor", "e2e") if index % 2 == 0 else ("e2e", "floor")
        for kind in order:
            start = time.perf_counter()
            image = decode(data)
            if kind == "floor":
                model._saliency_small(image)
                floor += time.perf_counter() - start
            else:
                model.analyze(image)
                end_to_end += time.perf_counter() - start
    return {"bench": "models", "model": name, "images": len(images),
            "images_per_s": round(len(images) / end_to_end, 2), "floor_per_s": round(len(images) / floor, 2),
            "ratio_to_floor": round(end_to_end / floor, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images for the fast models (default 200)")
    parser.add_argument("--u2netp-images", type=int, default=40, help="images for the u2netp family (default 40)")
    parser.add_argument("--models", nargs="*", help="only these model names")
    args = parser.parse_args(argv)
    count = max(args.images, args.u2netp_images)
    images = [generated_png(seed) for seed in range(count)]
    speed = {}
    for name in args.models or [*FAST_MODELS, *U2NETP_MODELS]:
        subset = images[:args.u2netp_images] if name.startswith("u2netp") else images[:args.images]
        row = bench_model(name, subset)
        speed[name] = row["images_per_s"]
        base = name.partition("@")[0]
        if base != name:
            row["ratio_to_base"] = round(row["images_per_s"] / speed[base], 3) if base in speed else None
            row["sparsity"] = getattr(get_model(name), "sparsity", None)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
