"""Registry of target models. Names are `model` or `model@variant`."""
from __future__ import annotations

import importlib.metadata
import os
from functools import lru_cache

from probekit.confirmatory import refuse_target
from probekit.models._base import UNKNOWN_VARIANT, CropResult, ModelCard, TargetModel
from probekit.models._compress import PX, PX_RANGE
from probekit.models.registered import MODELS_DIR_ENV, example_variants, registered_model, registered_names

DEFAULT_MODEL = "u2netp"

UNKNOWN_MODEL = "unknown model {name!r}; known models: {known}"


def _spectral(variant: str | None) -> TargetModel:
    from probekit.models.spectral import DEFAULT_WIDTH, SpectralResidual

    return SpectralResidual(width=_px(variant, "spectral-residual", DEFAULT_WIDTH), variant=variant)


def _u2netp(variant: str | None) -> TargetModel:
    from probekit.models.u2net import U2Netp

    return U2Netp(variant=variant)


def _fine_grained(variant: str | None) -> TargetModel:
    from probekit.models.fine_grained import FineGrained

    return FineGrained(max_side=_px(variant, "fine-grained", 256), variant=variant)


def _smartcrop(variant: str | None) -> TargetModel:
    from probekit.models.smartcrop_model import SmartCrop

    return SmartCrop(analyse_size=_px(variant, "smartcrop", 256), variant=variant)


# name -> (factory, example variants shown by `models`)
REGISTRY = {
    "u2netp": (_u2netp, ["int8", "160px", "fp16", "prune50", "prune90"]),
    "spectral-residual": (_spectral, ["32px", "128px"]),
    "fine-grained": (_fine_grained, ["128px"]),
    "smartcrop": (_smartcrop, ["128px"]),
}


PLUGIN_GROUP = "probekit.models"
PLUGIN_BROKEN = "plug-in model {name!r} ({value}) cannot be loaded: {error}"


def _plugin_factory(entry_point):
    # Loaded on first use: a broken plug-in fails when chosen (and is listed unavailable), not at import.
    def factory(variant: str | None) -> TargetModel:
        try:
            make = entry_point.load()
        except Exception as exc:  # noqa: BLE001 - whatever a third-party import raises, the model is unusable
            raise ValueError(PLUGIN_BROKEN.format(name=entry_point.name, value=entry_point.value, error=exc)) from None
        return make(variant)

    return factory


def _plugins() -> dict:
    """Croppers other packages add through the `probekit.models` entry point group (docs/models.md)."""
    return {ep.name: (_plugin_factory(ep), []) for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP)
            if ep.name not in REGISTRY}


REGISTRY.update(_plugins())


def _px(variant: str | None, model: str, default: int, extra: tuple[str, ...] = ()) -> int:
    if variant is None:
        return default
    match = PX.match(variant)
    if not match:
        known = ", ".join([*extra, "<N>px (16–2048)"])
        raise ValueError(UNKNOWN_VARIANT.format(variant=variant, model=model, known=known))
    size = int(match.group(1))
    if not PX_RANGE[0] <= size <= PX_RANGE[1]:
        raise ValueError(UNKNOWN_VARIANT.format(variant=variant, model=model, known="<N>px with 16 ≤ N ≤ 2048"))
    return size


def get_model(name: str) -> TargetModel:
    """The target model called `name` (`u2netp`, `spectral-residual@32px`, a registered `name@int8`, …)."""
    refuse_target(f"get_model({name!r})")
    return _get_model(name, os.environ.get(MODELS_DIR_ENV))


@lru_cache(maxsize=64)
def _get_model(name: str, _models_dir: str | None) -> TargetModel:
    # Keyed by the models directory too: a registered name means nothing outside its directory.
    base, _, variant = name.partition("@")
    if base in REGISTRY:
        factory, _examples = REGISTRY[base]
        return factory(variant or None)
    model = registered_model(base, variant or None)
    if model is None:
        raise ValueError(UNKNOWN_MODEL.format(name=name, known=", ".join(model_names())))
    return model


def model_names() -> list[str]:
    """Every base model this installation can run: the built-ins, then the registered ones."""
    return [*REGISTRY, *registered_names()]


def list_models() -> list[dict]:
    """`python -m probekit models --json`: name, version, description and example variants."""
    rows = []
    for name in model_names():
        try:
            model = get_model(name)
            version, description = model.version, model.card.summary
            variants = REGISTRY[name][1] if name in REGISTRY else example_variants(model)
        except Exception as exc:  # noqa: BLE001 - a broken model is listed with its reason
            version, description, variants = "unavailable", f"unavailable: {exc}", []
        rows.append({"name": name, "version": version, "description": description,
                     "variants": [f"{name}@{v}" for v in variants]})
    return rows


__all__ = ["CropResult", "DEFAULT_MODEL", "ModelCard", "REGISTRY", "TargetModel", "get_model", "list_models",
           "model_names"]
