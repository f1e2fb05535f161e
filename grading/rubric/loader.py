"""Find, validate and cache rubric files `<name>@<version>.json`.

The platform's rubrics live in grading/rubric/data/ (versioned with the code); an organizer's
own rubrics go in VAR_DIR/rubrics/ (or the directories in settings.RUBRIC_DIRS) and are
validated the same way: the JSON schema, then the cross-references, then the worked examples
must reproduce the scores the file states.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import jsonschema

from grading.rubric import schema
from grading.rubric.engine import Rubric, RubricError, factor_parts, score_finding

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_RUBRIC = ("twitter-2021", "1")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def rubric_dirs() -> list[Path]:
    from django.conf import settings

    extra = [Path(d) for d in getattr(settings, "RUBRIC_DIRS", [])]
    return [DATA_DIR, *extra, Path(settings.VAR_DIR) / "rubrics"]


def validate_rubric(data: dict, *, where: str = "data") -> Rubric:
    """Check a rubric dict completely; raise RubricError naming the place and the rule."""
    validator = jsonschema.Draft202012Validator(schema.RUBRIC_SCHEMA)
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        path = "/" + "/".join(str(p) for p in error.absolute_path)
        raise RubricError(schema.RUBRIC_INVALID.format(where=where, path=path, message=error.message))
    seen: set[str] = set()
    parts: dict[str, dict] = {}
    ids = [h["id"] for h in data["harms"]] + [f["id"] for f in data["factors"]]
    for factor in data["factors"]:
        for part in factor_parts(factor):
            if "parts" in factor:
                ids.append(part["id"])
            parts[part["id"]] = part
    for item in ids:
        if item in seen:
            raise RubricError(schema.RUBRIC_DUPLICATE_ID.format(where=where, id=item))
        seen.add(item)
    harms = {h["id"] for h in data["harms"]}
    if data["default_harm"] not in harms:
        raise RubricError(schema.RUBRIC_UNKNOWN_HARM_REF.format(where=where, field="default_harm", harm=data["default_harm"]))

    def check_level(field: str, part_id: str, level: str) -> None:
        if part_id not in parts:
            raise RubricError(schema.RUBRIC_UNKNOWN_FACTOR_REF.format(where=where, field=field, factor=part_id))
        if level not in {lv["id"] for lv in parts[part_id]["levels"]}:
            raise RubricError(schema.RUBRIC_UNKNOWN_LEVEL_REF.format(where=where, field=field, level=level, part=part_id))

    for part in parts.values():
        if "provisional" in part:
            check_level(f"{part['id']}.provisional", part["id"], part["provisional"])
    spec = data["measurement"]
    if spec["gated_factor"] not in {f["id"] for f in data["factors"]}:
        raise RubricError(schema.RUBRIC_UNKNOWN_FACTOR_REF.format(where=where, field="measurement.gated_factor", factor=spec["gated_factor"]))
    if "substantiated_level" in spec:
        check_level("measurement.substantiated_level", spec["gated_factor"], spec["substantiated_level"])
    for row in spec.get("effect_size_hints", []):
        check_level("measurement.effect_size_hints", spec.get("hint_factor", ""), row["level"])
    rubric = Rubric(data=data)
    for example in data.get("worked_examples", []):
        if example["harm"] not in harms:
            raise RubricError(schema.RUBRIC_UNKNOWN_HARM_REF.format(where=where, field="worked_examples", harm=example["harm"]))
        got = score_finding(rubric, harm_type=example["harm"], ratings=example["ratings"]).value
        if abs(got - example["expect"]) > 0.005:
            raise RubricError(schema.RUBRIC_EXAMPLE_MISMATCH.format(where=where, title=example["title"], got=got, expect=example["expect"]))
    return rubric


@functools.lru_cache(maxsize=64)
def _load_file(path: str, mtime_ns: int) -> Rubric:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RubricError(schema.RUBRIC_INVALID.format(where=Path(path).name, path=f"line {exc.lineno}", message=exc.msg)) from None
    return validate_rubric(data, where=Path(path).name)


def load_rubric(name: str, version: str) -> Rubric:
    """The rubric `<name>@<version>`, validated; cached until its file changes."""
    for value in (name, version):
        if not _NAME.match(value or ""):
            raise RubricError(schema.RUBRIC_BAD_NAME.format(value=value))
    filename = f"{name}@{version}.json"
    for directory in rubric_dirs():
        path = directory / filename
        if path.is_file():
            rubric = _load_file(str(path), path.stat().st_mtime_ns)
            if (rubric.name, rubric.version) != (name, version):
                raise RubricError(schema.RUBRIC_INVALID.format(where=filename, path="/name", message=f"the file declares {rubric.key}"))
            return rubric
    raise RubricError(schema.RUBRIC_NOT_FOUND.format(name=name, version=version, filename=filename))


def default_rubric() -> Rubric:
    return load_rubric(*DEFAULT_RUBRIC)


def rubric_for_challenge(challenge) -> Rubric:
    """The rubric a challenge chose (Challenge.rubric_name / rubric_version)."""
    return load_rubric(challenge.rubric_name, challenge.rubric_version)


def available_rubrics() -> list[str]:
    """`name@version` of every rubric file found, for the organizer's choice."""
    found = set()
    for directory in rubric_dirs():
        if directory.is_dir():
            found.update(p.stem for p in directory.glob("*@*.json"))
    return sorted(found)
