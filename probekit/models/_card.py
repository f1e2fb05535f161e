"""The card of an ONNX saliency model: how to feed the network and how to read its map (docs/models.md)."""
from __future__ import annotations

import json
import numbers
from dataclasses import dataclass

from probekit.models._base import ModelCard

RESIZES = ("lanczos", "bilinear", "bicubic")
CHANNELS = {"RGB": 3, "BGR": 3, "L": 1}
LAYOUTS = ("NCHW", "NHWC")
NORMALIZATIONS = ("minmax", "sigmoid", "none")

FIELD_MISSING = "card: {field} is missing"
FIELD_MISTYPED = "card: {field} must be {expected}, got {value}"
NOT_JSON = "card: not a JSON object: {error}"


class CardError(ValueError):
    """A card that is not JSON, or misses or mistypes a field (the message names the field)."""


@dataclass(frozen=True)
class InputSpec:
    size: tuple[int, int] | None  # (width, height); None when the graph takes any size
    native: tuple[int, int]  # the size the base model runs at and blur_sigma refers to
    resize: str
    channels: str
    layout: str
    scale: float | str  # a factor, or "max": divide by the image's max pixel value
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class OutputSpec:
    index: int
    normalize: str
    blur_sigma: float


@dataclass(frozen=True)
class OnnxCard:
    summary: str
    licence: str
    paper: str
    limits: str
    input: InputSpec
    output: OutputSpec
    raw: dict  # the card as given, for `card.json`

    def behaviour(self) -> str:
        """The canonical text of every field that changes the map: part of the version hash."""
        return json.dumps({"input": self.raw["input"], "output": self.raw["output"]}, sort_keys=True)

    def model_card(self, name: str, smoothing_note: str = "") -> ModelCard:
        spec, out = self.input, self.output
        size = "any size (dynamic), native {}×{}".format(*spec.native) if spec.size is None else "{}×{}".format(*spec.size)
        scale = "divided by the image's max pixel value" if spec.scale == "max" else f"× {spec.scale}"
        return ModelCard(
            name=name, summary=self.summary, paper=self.paper, licence=self.licence, limits=self.limits,
            input_size=f"{spec.channels} {spec.layout} resized ({spec.resize}) to {size}, {scale}, mean {list(spec.mean)}, "
            f"std {list(spec.std)}",
            smoothing=f"output {out.index} normalised ({out.normalize}), Gaussian blur σ = {out.blur_sigma} px at the "
            f"native size; the map is stretched back to the image with bilinear interpolation{smoothing_note}",
        )


def _get(data: dict, path: str, *, required: bool = True):
    node = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            if required:
                raise CardError(FIELD_MISSING.format(field=path))
            return None
        node = node[part]
    return node


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _mistyped(field: str, expected: str, value) -> CardError:
    return CardError(FIELD_MISTYPED.format(field=field, expected=expected, value=json.dumps(value)[:60]))


def _text(data, field, required=True) -> str:
    value = _get(data, field, required=required)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _mistyped(field, "a string", value)
    return value


def _choice(data, field, choices) -> str:
    value = _get(data, field)
    if value not in choices:
        raise _mistyped(field, "one of " + ", ".join(choices), value)
    return value


def _size(data, field, required=True) -> tuple[int, int] | None:
    value = _get(data, field, required=required)
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                 and 8 <= v <= 4096 for v in value)):
        raise _mistyped(field, "[width, height] in pixels (8–4096)", value)
    return value[0], value[1]


def _vector(data, field, n: int, positive: bool = False) -> tuple[float, ...]:
    value = _get(data, field)
    if not (isinstance(value, list) and len(value) == n and all(_number(v) and (v > 0 or not positive) for v in value)):
        raise _mistyped(field, f"a list of {n} {'positive ' if positive else ''}numbers", value)
    return tuple(float(v) for v in value)


def parse_card(data) -> OnnxCard:
    """The card as the model runs it.

    Raises
    ------
    CardError
        When a field is missing or mistyped; the message names the field (`card: input.mean is missing`).
    """
    if not isinstance(data, dict):
        raise CardError(NOT_JSON.format(error="the top level is not an object"))
    for section in ("input", "output"):
        if not isinstance(_get(data, section), dict):
            raise _mistyped(section, "an object", data[section])
    size_value = _get(data, "input.size")
    size = None if size_value == "dynamic" else _size(data, "input.size")
    native = _size(data, "input.native", required=size is None) or size
    channels = _choice(data, "input.channels", tuple(CHANNELS))
    scale = _get(data, "input.scale")
    if not (scale == "max" or (_number(scale) and scale > 0)):
        raise _mistyped("input.scale", 'a positive number or "max"', scale)
    index = _get(data, "output.index")
    if not (isinstance(index, int) and not isinstance(index, bool) and index >= 0):
        raise _mistyped("output.index", "a whole number ≥ 0", index)
    sigma = _get(data, "output.blur_sigma")
    if not (_number(sigma) and 0 <= sigma <= 64):
        raise _mistyped("output.blur_sigma", "a number of pixels from 0 to 64", sigma)
    return OnnxCard(
        summary=_text(data, "summary"), licence=_text(data, "licence"), paper=_text(data, "paper"),
        limits=_text(data, "limits", required=False),
        input=InputSpec(size=size, native=native, resize=_choice(data, "input.resize", RESIZES), channels=channels,
                        layout=_choice(data, "input.layout", LAYOUTS),
                        scale="max" if scale == "max" else float(scale),
                        mean=_vector(data, "input.mean", CHANNELS[channels]),
                        std=_vector(data, "input.std", CHANNELS[channels], positive=True)),
        output=OutputSpec(index=index, normalize=_choice(data, "output.normalize", NORMALIZATIONS),
                          blur_sigma=float(sigma)),
        raw=data,
    )


def load_card(text: str) -> OnnxCard:
    """`parse_card` of a card file's text."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CardError(NOT_JSON.format(error=exc)) from None
    return parse_card(data)
