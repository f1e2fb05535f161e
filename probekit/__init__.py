"""probekit: what probes import inside the sandbox, and what participants run on a laptop.

Target models (`get_model`, `list_models`), the crop rule (`crop_window`), the image-set
writer (`ImageSetWriter`) and validator (`validate_image_set`), the run's seed (`seed`). Plain
Python: no Django.
"""
import os

from probekit.confirmatory import SEED_ENV
from probekit.crop import DEFAULT_RATIOS, crop_window, ratio_key, top_points
from probekit.models import DEFAULT_MODEL, CropResult, ModelCard, TargetModel, get_model, list_models

__all__ = [
    "DEFAULT_MODEL", "DEFAULT_RATIOS", "CropResult", "ImageSetWriter", "ModelCard", "TargetModel",
    "crop_window", "get_model", "list_models", "ratio_key", "seed", "top_points", "validate_image_set",
]


def seed() -> int:
    """The integer in PROBE_SEED, 0 when it is unset.

    The platform runs a probe a second time with a fresh secret seed to see whether its finding
    comes back on new subjects (a replication): a probe that draws its images from `seed()` draws
    new ones; a probe that ignores it emits the same set again, and its finding cannot replicate.
    """
    value = os.environ.get(SEED_ENV, "").strip()
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{SEED_ENV} must be an integer, not {value!r}") from None


def __getattr__(name):
    # Lazy so `import probekit` stays cheap inside a sandbox that only needs the writer.
    if name == "ImageSetWriter":
        from probekit.writer import ImageSetWriter

        return ImageSetWriter
    if name == "validate_image_set":
        from probekit.imageset import validate_image_set

        return validate_image_set
    raise AttributeError(name)
