"""What the model sees is what a browser shows: one decoding of a participant's image.

Pillow by itself ignores what browsers apply, so the same bytes could be measured as one picture
and judged as another. Every image is therefore either normalised the way a browser renders it,
or refused when browsers disagree among themselves:

- **Colour profiles** (iCCP in PNG, ICC_PROFILE in JPEG): the pixels are converted to sRGB with
  the embedded profile, as browsers do; a profile that cannot be read is refused.
- **Gamma** (gAMA without sRGB or iCCP): browsers differ on it, so anything but the sRGB gamma
  (1/2.2, within 2 %) is refused.
- **Animated PNG**: browsers show the animation, Pillow the default image, which may not be
  part of it; animated PNGs are refused.
- **Transparency**: composited on white (the pages' background and the compose default), so
  colour hidden under alpha 0 is never measured.
- **16 bits per channel**: scaled to 8 (Pillow's conversion would clip them to white).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageCms

SRGB_GAMMA = 1 / 2.2
BACKGROUND = (255, 255, 255)
ANIMATED = "is an animated PNG; browsers show its animation, not the one image a model measures: send a still image"
ODD_GAMMA = ("declares gamma {gamma:.4f} (a gAMA chunk without sRGB or a colour profile), which browsers render "
             "differently; save it as plain sRGB")
BAD_PROFILE = "carries a colour profile that cannot be read ({error}); save it as plain sRGB"


def ambiguity(image: Image.Image) -> str | None:
    """Why browsers would not agree on how `image` looks (an open, undecoded image), or None."""
    if image.format == "PNG" and (getattr(image, "is_animated", False) or "default_image" in image.info):
        return ANIMATED
    gamma = image.info.get("gamma")
    if (gamma is not None and "srgb" not in image.info and not image.info.get("icc_profile")
            and abs(float(gamma) - SRGB_GAMMA) > 0.02 * SRGB_GAMMA):
        return ODD_GAMMA.format(gamma=float(gamma))
    profile = image.info.get("icc_profile")
    if profile:
        try:
            ImageCms.ImageCmsProfile(io.BytesIO(profile))
        except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as exc:
            return BAD_PROFILE.format(error=str(exc)[:100] or type(exc).__name__)
    return None


def _eight_bit(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.uint32)
        return Image.fromarray((pixels >> 8 if pixels.max(initial=0) > 255 else pixels).astype(np.uint8), "L")
    return image


def browser_rgb(image: Image.Image) -> Image.Image:
    """The decoded `image` as RGB, as a browser renders it on white (profile applied, alpha composited)."""
    profile = image.info.get("icc_profile")
    image = _eight_bit(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if profile and image.mode in ("RGB", "RGBA", "L", "CMYK"):
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        mode = "RGBA" if image.mode == "RGBA" else "RGB"
        image = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=mode)
    if image.mode == "RGBA":
        canvas = Image.new("RGBA", image.size, (*BACKGROUND, 255))
        canvas.alpha_composite(image)
        return canvas.convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")
