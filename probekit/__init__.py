"""probekit: what probes import inside the sandbox, and what participants run on a laptop.

Target models (`get_model`, `list_models`), the crop rule (`crop_window`), the image-set
writer (`ImageSetWriter`) and validator (`validate_image_set`). Plain Python: no Django.
"""
from probekit.crop import DEFAULT_RATIOS, crop_window, ratio_key, top_points
from probekit.models import DEFAULT_MODEL, CropResult, ModelCard, TargetModel, get_model, list_models

__all__ = [
    "DEFAULT_MODEL", "DEFAULT_RATIOS", "CropResult", "ImageSetWriter", "ModelCard", "TargetModel",
    "crop_window", "get_model", "list_models", "ratio_key", "top_points", "validate_image_set",
]


def __getattr__(name):
    # Lazy so `import probekit` stays cheap inside a sandbox that only needs the writer.
    if name == "ImageSetWriter":
        from probekit.writer import ImageSetWriter

        return ImageSetWriter
    if name == "validate_image_set":
        from probekit.imageset import validate_image_set

        return validate_image_set
    raise AttributeError(name)
