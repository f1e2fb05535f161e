"""The JSON schema a rubric file must satisfy, and the messages of the errors a rubric can raise."""
from __future__ import annotations

RUBRIC_INVALID = "Rubric {where} is invalid at {path}: {message}"
RUBRIC_DUPLICATE_ID = "Rubric {where} uses the id {id!r} twice; harm, factor and part ids must be unique."
RUBRIC_UNKNOWN_LEVEL_REF = "Rubric {where}: {field} names level {level!r}, which {part!r} does not have."
RUBRIC_UNKNOWN_HARM_REF = "Rubric {where}: {field} names harm {harm!r}, which the rubric does not list."
RUBRIC_UNKNOWN_FACTOR_REF = "Rubric {where}: {field} names factor {factor!r}, which the rubric does not list."
RUBRIC_EXAMPLE_MISMATCH = "Rubric {where}: worked example {title!r} gives {got}, the file expects {expect}."
RUBRIC_NOT_FOUND = "No rubric {name}@{version}: add {filename} under grading/rubric/data/ or VAR_DIR/rubrics/."
RUBRIC_BAD_NAME = "A rubric name and version use lowercase letters, digits, '.', '_' and '-' only (got {value!r})."
UNKNOWN_HARM = "Unknown harm type {harm!r}; choose one of: {choices}."
MISSING_RATING = "Rate {part!r} ({label}): pick one of its levels."
UNKNOWN_LEVEL = "{level!r} is not a level of {part!r}; choose one of: {choices}."

_ID = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$"}
_LEVELS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["id", "label", "value"],
        "additionalProperties": False,
        "properties": {"id": _ID, "label": {"type": "string"}, "value": {"type": "number", "exclusiveMinimum": 0}},
    },
}
_PART = {
    "type": "object",
    "required": ["id", "label", "levels"],
    "additionalProperties": False,
    "properties": {
        "id": _ID, "label": {"type": "string"}, "help": {"type": "string"},
        "levels": _LEVELS, "provisional": _ID,
    },
}

RUBRIC_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Rubric",
    "type": "object",
    "required": ["schema", "name", "version", "title", "harms", "default_harm", "factors", "measurement", "aggregation"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": 1},
        "name": _ID,
        "version": _ID,
        "title": {"type": "string"},
        "description": {"type": "string"},
        "harms": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "label", "intentional", "base"],
                "additionalProperties": False,
                "properties": {
                    "id": _ID, "label": {"type": "string"}, "intentional": {"type": "boolean"},
                    "base": {"type": "number", "exclusiveMinimum": 0}, "description": {"type": "string"},
                },
            },
        },
        "default_harm": _ID,
        "factors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "label"],
                "additionalProperties": False,
                "properties": {
                    "id": _ID, "label": {"type": "string"}, "help": {"type": "string"},
                    "applies_to": {"enum": ["any", "unintentional", "intentional"]},
                    "combine": {"enum": ["mean", "product"]},
                    "parts": {"type": "array", "minItems": 1, "items": _PART},
                    "levels": _LEVELS,
                    "provisional": _ID,
                },
                # A factor has either its own levels or parts with levels, never both.
                "oneOf": [{"required": ["levels"], "not": {"required": ["parts"]}},
                          {"required": ["parts"], "not": {"required": ["levels"]}}],
            },
        },
        "measurement": {
            "type": "object",
            "required": ["alpha", "gated_factor", "cap"],
            "additionalProperties": False,
            "properties": {
                "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "gated_factor": _ID,
                "cap": {"type": "number", "exclusiveMinimum": 0},
                "substantiated_level": _ID,
                "hint_factor": _ID,
                "effect_size_hints": {
                    "type": "array",
                    "items": {
                        "type": "object", "required": ["min", "level"], "additionalProperties": False,
                        "properties": {"min": {"type": "number", "minimum": 0}, "level": _ID},
                    },
                },
            },
        },
        "aggregation": {
            "type": "object",
            "required": ["method", "disagreement_threshold"],
            "additionalProperties": False,
            "properties": {
                "method": {"enum": ["median", "mean", "min", "max"]},
                "disagreement_threshold": {"type": "number", "minimum": 0},
            },
        },
        "review": {
            "type": "object", "additionalProperties": False, "properties": {"blind": {"type": "boolean"}},
        },
        "worked_examples": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title", "harm", "ratings", "expect"],
                "additionalProperties": False,
                "properties": {
                    "title": {"type": "string"}, "harm": _ID,
                    "ratings": {"type": "object", "additionalProperties": _ID},
                    "expect": {"type": "number"},
                },
            },
        },
    },
}
