"""Rules that keep an image set readable everywhere and its measurement's cost bounded.

Each check returns the broken rule as a message (None when the rule holds), and the validator
(`probekit.imageset`) raises it as `ImageSetRejected` naming the item. They run at validation,
before any model sees the set, so a set that would cost more than the platform allows, or that
unpacks differently on another operating system, is the probe's fault and never a platform one.

- **Portable paths**: an image path must mean the same file on Linux, macOS and Windows (a
  published bundle is verified on all three): no `:` (drive letters, alternate streams), none of
  Windows' reserved characters or device names (`CON`, `NUL`, `COM1`, … with any extension), no
  name ending in a dot or a space, at most `MAX_IMAGE_PATH_BYTES` bytes (the object storage's keys
  hold 1,024 with the platform's prefix), and unique once NFC-normalised and case-folded.
- **Look-alike names**: group names are unique after NFKC and case folding (`ａｌｉｃｅ`,
  `Alice` and `alice` are one name) with Cyrillic and Greek look-alikes of Latin letters read as
  those letters (`раураl` is `paypal`), and item ids are unique after case folding.
- **Image shape**: at most `MAX_IMAGE_SIDE` pixels a side and `MAX_ASPECT_RATIO` between the
  long and the short side (a 1×8,000 strip costs a saliency model as much memory as a 4,000×4,000
  image).
- **Plan size**: the model runs a measurement plans (images or composites × the target, its
  variants and, with generalization, every other model) are capped at `MAX_PLAN_RUNS`; a
  `pairs` set's composites are counted without building them.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import PurePosixPath

import numpy as np

MAX_IMAGE_PATH_BYTES = 512
MAX_IMAGE_SIDE = 8192
MAX_ASPECT_RATIO = 12
MAX_PLAN_RUNS = 200_000
WINDOWS_RESERVED_CHARS = frozenset('<>:"|?*')
WINDOWS_DEVICE_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{prefix}{n}" for prefix in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]]
)


def shown(value: object, limit: int = 80) -> str:
    """repr() of a participant's value, shortened so a message stays readable."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# Cyrillic and Greek letters drawn like Latin ones (after case folding): `раураl` reads as `paypal`.
HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y",
})


def name_key(text: str) -> str:
    """The one normalisation for names people read: NFKC, case folded, NFKC again (folding can
    un-normalise), and Cyrillic or Greek look-alikes of Latin letters read as those letters. Used
    for group names here and for account names by the platform (the lockout and the login)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()).translate(HOMOGLYPHS)


def path_key(path: str) -> str:
    """Two paths with the same key are one file on a case-insensitive, normalising file system."""
    return unicodedata.normalize("NFC", path).casefold()


def portable_path_error(path: PurePosixPath) -> str | None:
    """Why `path` would not name the same file on every operating system, or None."""
    text = str(path)
    if len(text.encode("utf-8")) > MAX_IMAGE_PATH_BYTES:
        return f"image path is {len(text.encode('utf-8')):,} bytes long; at most {MAX_IMAGE_PATH_BYTES} are allowed"
    for part in path.parts:
        bad = sorted(WINDOWS_RESERVED_CHARS.intersection(part))
        if bad:
            return (f"image path {text!r} holds {' '.join(repr(c) for c in bad)}, which Windows reads as a drive, "
                    "stream or wildcard; paths must be portable")
        if part.endswith((".", " ")):
            return f"image path {text!r} has a name ending in a dot or a space, which Windows strips"
        stem = part.split(".", 1)[0].rstrip(" ").upper()
        if stem in WINDOWS_DEVICE_NAMES:
            return f"image path {text!r} uses the reserved Windows device name {stem!r}"
    return None


def lookalike_error(names: list[str]) -> str | None:
    """The first two group names that read as one (same NFKC case-folded form), or None."""
    seen: dict[str, str] = {}
    for name in names:
        key = name_key(name)
        if key in seen:
            return (f"group names {seen[key]!r} and {name!r} look alike (the same after Unicode NFKC "
                    "normalisation and case folding, Cyrillic or Greek look-alikes read as Latin); "
                    "group names must be distinct")
        seen[key] = name
    return None


def shape_error(width: int, height: int) -> str | None:
    long_side, short_side = max(width, height), max(1, min(width, height))
    if long_side > MAX_IMAGE_SIDE:
        return f"has a side of {long_side:,} pixels; at most {MAX_IMAGE_SIDE:,} are allowed"
    if long_side > MAX_ASPECT_RATIO * short_side:
        return (f"is {width}×{height} pixels, an aspect ratio over {MAX_ASPECT_RATIO}:1; "
                f"the long side may be at most {MAX_ASPECT_RATIO} times the short one")
    return None


def _single_group(item) -> str | None:
    groups = {region.group for region in item.regions}
    return groups.pop() if len(groups) == 1 else None


def unit_count(image_set) -> int:
    """How many images (or, for `compose: "pairs"`, composites) one model observes.

    The same count as the measurement's plan (probekit.measurement's composites: min(nA, nB) pairs
    per pair of groups and round, four layouts each; the items with a `base` observed once more as
    singles), computed from counts only."""
    if image_set.compose != "pairs":
        return len(image_set.items)
    per_group = Counter(_single_group(item) for item in image_set.items)
    groups = image_set.groups
    pairs = sum(min(per_group[a], per_group[b]) for i, a in enumerate(groups) for b in groups[i + 1:])
    return pairs * image_set.pairs_per_image * 4 + sum(1 for item in image_set.items if item.base)


def plan_error(image_set, *, models: int, cap: int = MAX_PLAN_RUNS) -> str | None:
    """Why measuring the set on `models` models would run more than `cap` model runs, or None."""
    units = unit_count(image_set)
    runs = units * max(1, models)
    if runs <= cap:
        return None
    what = "composites" if image_set.compose == "pairs" else "images"
    return (f"the measurement would run {runs:,} model runs ({units:,} {what} × {models} "
            f"model{'' if models == 1 else 's'}); "
            f"the plan is capped at {cap:,} model runs: use fewer groups, images or pairs_per_image")


_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[[ord("["), ord("{")]] = 1
_BRACKET_STEP[[ord("]"), ord("}")]] = -1


def json_depth(raw: bytes) -> int:
    """How deeply `raw` nests arrays and objects, found without parsing (so without recursion).

    Vectorised and linear: a quote preceded by an odd run of backslashes is escaped, a bracket
    after an odd number of real quotes is inside a string. (A regex that strips strings first
    is quadratic on unterminated ones.)
    """
    data = np.frombuffer(raw, dtype=np.uint8)
    quotes = np.flatnonzero(data == ord('"'))
    slashes = np.flatnonzero(data == ord("\\"))
    if quotes.size and slashes.size:
        breaks = np.flatnonzero(np.diff(slashes) != 1)
        run_starts = slashes[np.r_[0, breaks + 1]]
        run_ends = slashes[np.r_[breaks, slashes.size - 1]]
        at = np.minimum(np.searchsorted(run_ends, quotes - 1), run_ends.size - 1)
        escaped = (run_ends[at] == quotes - 1) & ((quotes - run_starts[at]) % 2 == 1)
        quotes = quotes[~escaped]
    steps = _BRACKET_STEP[data]
    brackets = np.flatnonzero(steps)
    outside = np.searchsorted(quotes, brackets) % 2 == 0
    if not outside.any():
        return 0
    return int(np.cumsum(steps[brackets[outside]], dtype=np.int64).max())
