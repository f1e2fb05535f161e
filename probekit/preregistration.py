"""Pre-registration: the manifest's `primary` names the one test a probe stakes its claim on.

It is read at validation (`probekit.imageset`), so a primary the set cannot produce is refused
before anything is measured, with a message naming it; the measurement then tests it first at the
full alpha (docs/statistics.md, "Pre-registration").
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from probekit.setrules import shown

if TYPE_CHECKING:
    from probekit.imageset import Item

PRIMARY_KINDS = ("preference", "position", "position_x", "position_y", "paired", "group_rate")
RATIO_KEY = re.compile(r"^\d+(\.\d+)?$")


def _primary_design(kind: str, first: str, second: str, *, compose: str, items: list[Item]) -> str | None:
    """Why a set cannot produce a test of `kind` between two groups, or None when it can."""
    both = [i for i in items if {first, second} <= {r.group for r in i.regions}]
    singles = {g: any({r.group for r in i.regions} == {g} for i in items) for g in (first, second)}
    if kind == "position" and compose != "pairs":
        return "'position' is the slot test of platform-built pairs; probe-built images have 'position_x' and 'position_y'"
    if kind in ("position_x", "position_y") and compose == "pairs":
        return f"{kind!r} is for probe-built images; a pairs set has 'position'"
    if kind in ("preference", "position") and compose == "pairs":
        return None if all(singles.values()) else "both groups need single-subject images to be paired"
    if kind in ("preference", "position_x", "position_y") and not both:
        return "no image holds regions of both groups"
    if kind == "paired" and not any(
            {first, second} <= {r.group for i in items if i.base == base for r in i.regions}
            for base in {i.base for i in items if i.base}):
        return "no 'base' tuple holds both groups"
    if kind == "group_rate" and not (both or all(singles.values())):
        return "the groups never appear"
    return None


def primary_error(value: object, *, groups: list[str], compose: str, items: list[Item]) -> str | None:
    """Why the manifest's pre-registered `primary` test id is refused (a message naming it), or None: the
    set must be able to produce that test: `<kind>:<first>><second>` for preference and position tests,
    `…@<ratio>` for paired and group_rate, groups in the manifest's order, base model only."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 300:
        return "manifest 'primary' must be a test id such as \"preference:a>b\" or \"group_rate:a>b@1.0\""
    kind, _, rest = value.partition(":")
    pair, _, ratio = rest.partition("@")
    first, _, second = pair.partition(">")
    problem = None
    if "#" in value:
        problem = "a primary names a base-model test, without '#<variant>'"
    elif kind not in PRIMARY_KINDS:
        problem = f"the kind must be one of {', '.join(PRIMARY_KINDS)}"
    elif first not in groups or second not in groups or first == second:
        problem = f"both groups must be among the manifest's groups {groups}"
    elif groups.index(first) > groups.index(second):
        problem = f"tests name the groups in the manifest's order: \"{kind}:{second}>{first}{'@' + ratio if ratio else ''}\""
    elif (kind in ("paired", "group_rate")) != bool(ratio) or (ratio and not RATIO_KEY.match(ratio)):
        problem = "paired and group_rate tests end in '@<ratio>' (e.g. @1.0); the others have no ratio"
    else:
        problem = _primary_design(kind, first, second, compose=compose, items=items)
    if problem:
        return f"manifest 'primary' {shown(value)} names a test this set cannot produce: {problem}"
    return None
