"""Registry of target models. Names are `model` or `model@variant`."""
from __future__ import annotations

import re
from functools import lru_cache

from probekit.models._base import CropResult, ModelCard, TargetModel

DEFAULT_MODEL = "u2netp"

UNKNOWN_MODEL = "unknown model {name!r}; known models: {known}"
UNKNOWN_VARIANT = "unknown variant {variant!r} of {model}; known variants: {known}"

_PX = re.compile(r"^(\d{2,4})px$")


def _spectral(variant: str | None) -> TargetModel:
    from probekit.models.spectral import DEFAULT_WIDTH, SpectralResidual

    return SpectralResidual(width=_px(variant, "spectral-residual", DEFAULT_WIDTH), variant=variant)


def _u2netp(variant: str | None) -> TargetModel:
    from probekit.models.u2net import U2Netp

    if variant == "int8":
        return U2Netp(quantized=True, variant=variant)
    return U2Netp(input_size=_px(variant, "u2netp", 320, extra=("int8",)), variant=variant)


def _fine_grained(variant: str | None) -> TargetModel:
    from probekit.models.fine_grained import FineGrained

    return FineGrained(max_side=_px(variant, "fine-grained", 256), variant=variant)


def _smartcrop(variant: str | None) -> TargetModel:
    from probekit.models.smartcrop_model import SmartCrop

    return SmartCrop(analyse_size=_px(variant, "smartcrop", 256), variant=variant)


# name -> (factory, example variants shown by `models`)
REGISTRY = {
    "u2netp": (_u2netp, ["int8", "160px"]),
    "spectral-residual": (_spectral, ["32px", "128px"]),
    "fine-grained": (_fine_grained, ["128px"]),
    "smartcrop": (_smartcrop, ["128px"]),
}


def _px(variant: str | None, model: str, default: int, extra: tuple[str, ...] = ()) -> int:
    if variant is None:
        return default
    match = _PX.match(variant)
    if not match:
        known = ", ".join([*extra, "<N>px (16–2048)"])
        raise ValueError(UNKNOWN_VARIANT.format(variant=variant, model=model, known=known))
    size = int(match.group(1))
    if not 16 <= size <= 2048:
        raise ValueError(UNKNOWN_VARIANT.format(variant=variant, model=model, known="<N>px with 16 ≤ N ≤ 2048"))
    return size


@lru_cache(maxsize=32)
def get_model(name: str) -> TargetModel:
    """The target model called `name` (`u2netp`, `spectral-residual@32px`, …)."""
    base, _, variant = name.partition("@")
    if base not in REGISTRY:
        raise ValueError(UNKNOWN_MODEL.format(name=name, known=", ".join(REGISTRY)))
    factory, _examples = REGISTRY[base]
    return factory(variant or None)


def list_models() -> list[dict]:
    """`python -m probekit models --json`: name, version, description and example variants."""
    rows = []
    for name, (_factory, variants) in REGISTRY.items():
        try:
            model = get_model(name)
            version, description = model.version, model.card.summary
        except Exception as exc:  # noqa: BLE001 - a broken model is listed with its reason
            version, description = "unavailable", f"unavailable: {exc}"
        rows.append({"name": name, "version": version, "description": description,
                     "variants": [f"{name}@{v}" for v in variants]})
    return rows


__all__ = ["CropResult", "DEFAULT_MODEL", "ModelCard", "REGISTRY", "TargetModel", "get_model", "list_models"]
