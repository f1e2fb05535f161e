"""The image set a probe emits, and its validation on the trusted side.

`validate_image_set` reads `manifest.json` and every image it lists without following links,
judges formats by content, applies the caps, and either returns an `ImageSet` or raises
`ImageSetRejected` whose message names the item and the rule that failed. Whatever tree and
bytes a probe leaves behind, nothing else is raised (docs/failure-model.md, "Probe output").
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import stat
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image, ImageOps

from probekit import setrules
from probekit.decode import ambiguity, browser_rgb
from probekit.preregistration import primary_error
from probekit.setproblems import Problems
from probekit.setrules import shown as _shown

SCHEMA_VERSION = 1
COMPOSE_MODES = ("none", "pairs")
FORMATS_BY_EXTENSION = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
GROUP_NAME = re.compile(r"^[^\s<>@#][^<>@#]{0,63}$")

# Caps on what a manifest may hold; every one is named in the rejection message that enforces it.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_MANIFEST_DEPTH = 16  # the schema needs 6 levels (object, items, item, regions, region, box)
MAX_TITLE_CHARS = 300
MAX_HYPOTHESIS_CHARS = 2000
MAX_ATTRIBUTE_CHARS = 100
MAX_GROUPS = 16  # every pair of groups is tested: 16 groups are already 120 tests per ratio
MAX_REGIONS_PER_ITEM = 32
MAX_IMAGE_PATH_CHARS = 300
MAX_NAME_BYTES = 255  # one path component, the file systems' own NAME_MAX

# Decoding caps: the cost of decoding is bounded by structure read without decoding.
MAX_JPEG_SCANS = 64  # libjpeg's standard progressive script writes 10 scans (6 for greyscale)
MAX_MEAN_JPEG_SCANS = 16  # per pixel, over the whole set: most images must be ordinary
MAX_JPEG_SEGMENTS = 1000  # markers of one JPEG (APPn, DQT, DHT, SOS…); Pillow parses each in Python
MAX_PNG_CHUNKS = 100_000  # a 25-megapixel PNG in 8 KiB IDAT chunks needs about 10,000


class ImageSetRejected(ValueError):
    """The image set breaks a rule; the message says which item and which rule (every problem found,
    up to `setproblems.MAX_PROBLEMS`)."""


class _CheckStopped(ImageSetRejected):
    """A problem after which the rest of the set cannot, or should not, be checked."""


@dataclass(frozen=True)
class Region:
    group: str
    box: tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Item:
    id: str
    image: str  # path relative to the set's root
    base: str | None
    regions: tuple[Region, ...]
    width: int
    height: int
    sha256: str | None  # None when validated with hash_images=False
    bytes: int


@dataclass
class ImageSet:
    root: Path
    manifest: dict
    title: str
    hypothesis: str
    attribute: str
    groups: list[str]
    compose: str
    pairs_per_image: int
    items: list[Item]
    manifest_sha256: str
    total_bytes: int = 0
    extra: dict = field(default_factory=dict)
    primary: str | None = None  # the pre-registered test id (docs/statistics.md, "Pre-registration")

    def path_of(self, item: Item) -> Path:
        return self.root / item.image

    def open_image(self, item: Item) -> Image.Image:
        """The item's image as RGB, EXIF orientation applied (as validation measured it).

        The decoding caps are checked again here (the file is re-read, never trusted from
        before), and an image that cannot be decoded raises ImageSetRejected naming the item.
        """
        path, where = self.path_of(item), f"item {item.id!r}"
        try:
            with open(path, "rb") as handle:
                _check_decoding_cost(handle, FORMATS_BY_EXTENSION.get(path.suffix.lower(), ""), where)
                with Image.open(handle, formats=["PNG", "JPEG"]) as raw:
                    raw.load()
                    return browser_rgb(_upright(raw))  # as a browser shows it (probekit.decode)
        except ImageSetRejected:
            raise
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for corrupt files
            raise _unreadable(item.image, exc, where) from None


def _orientation(image: Image.Image) -> int:
    """EXIF orientation without decoding pixels (Pillow's PNG getexif() loads the whole image)."""
    if image.format == "PNG":
        raw = image.info.get("exif")
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
        return exif.get(0x0112, 1)
    return image.getexif().get(0x0112, 1)


def _upright(image: Image.Image) -> Image.Image:
    return ImageOps.exif_transpose(image) if _orientation(image) != 1 else image


def _reject(rule: str, where: str = "", *, stop: bool = False) -> ImageSetRejected:
    return (_CheckStopped if stop else ImageSetRejected)(f"{where}: {rule}" if where else rule)


def _unreadable(relative: str, exc: Exception, where: str) -> ImageSetRejected:
    return _reject(f"image {relative!r} is not a readable PNG or JPEG ({type(exc).__name__}: {str(exc)[:200]})", where)


def unprintable(text: str, allowed: str = "") -> str | None:
    """The first control, format, surrogate or line-separator character of `text`, if any.

    They hide or reorder what a judge reads (bidi overrides, zero-width marks), and PostgreSQL
    cannot store NUL or lone surrogates.
    """
    for char in text:
        if char not in allowed and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            return char
    return None


def _check_text(manifest: dict, key: str, cap: int, *, allowed: str = "") -> str:
    value = manifest.get(key, "")
    if not isinstance(value, str):
        raise _reject(f"manifest {key!r} must be a string")
    if len(value) > cap:
        raise _reject(f"manifest {key!r} has {len(value):,} characters; at most {cap:,} are allowed")
    bad = unprintable(value, allowed)
    if bad is not None:
        raise _reject(f"manifest {key!r} holds the control or invisible character U+{ord(bad):04X}")
    return value


def _safe_relative(value: object, where: str) -> PurePosixPath:
    if not isinstance(value, str) or not value or len(value) > MAX_IMAGE_PATH_CHARS:
        raise _reject(f"'image' must be a non-empty relative path of at most {MAX_IMAGE_PATH_CHARS} characters", where)
    bad = unprintable(value)
    if "\\" in value or bad is not None:
        shown = "a backslash" if bad is None else f"the control or invisible character U+{ord(bad):04X}"
        raise _reject(f"image path {_shown(value)} may not contain {shown}", where)
    path = PurePosixPath(value)
    if path.is_absolute() or any(part in ("..", "") for part in path.parts) or not path.parts:
        raise _reject(f"image path {_shown(value)} must stay inside the image set (no absolute paths, no '..')", where)
    for part in path.parts:
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise _reject(f"image path {_shown(value)} has a name longer than {MAX_NAME_BYTES} bytes", where)
    return path


def _lstat_regular(root: Path, relative: PurePosixPath, where: str) -> os.stat_result:
    """lstat every component: no symbolic links anywhere, and the file itself regular."""
    current = root
    for depth, part in enumerate(relative.parts):
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            raise _reject(f"image {str(relative)!r} does not exist", where) from None
        except OSError as exc:
            raise _reject(f"image {str(relative)!r} cannot be read ({exc.strerror})", where) from None
        if stat.S_ISLNK(info.st_mode):
            raise _reject(f"{str(relative)!r} is or passes through a symbolic link; links are not allowed", where)
        last = depth == len(relative.parts) - 1
        if not last and not stat.S_ISDIR(info.st_mode):
            raise _reject(f"{str(relative)!r}: {part!r} is not a directory", where)
    if not stat.S_ISREG(info.st_mode):
        raise _reject(f"image {str(relative)!r} is not a regular file (devices, fifos and directories are refused)", where)
    if info.st_nlink > 1:
        raise _reject(f"image {str(relative)!r} is a hard link; links are not allowed", where)
    return info


def open_listed_file(root: Path, relative: str | PurePosixPath, where: str = "") -> BinaryIO:
    """`root/relative` opened for reading without following a link at any component.

    Only a regular file with one link opens; fifos and devices are never waited on (O_NONBLOCK).
    The copy-out opens files through this too, so what it copies is what validation read.
    """
    relative = PurePosixPath(relative)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _reject(f"the image set directory cannot be read ({exc.strerror})") from None
    try:
        for part in relative.parts[:-1]:
            inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=directory)
            os.close(directory)
            directory = inner
        fd = os.open(relative.parts[-1], flags, dir_fd=directory)
    except OSError as exc:
        raise _reject(f"{str(relative)!r} cannot be opened as a plain file ({exc.strerror}); "
                      "links, devices and fifos are refused", where) from None
    finally:
        os.close(directory)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        raise _reject(f"{str(relative)!r} is not a regular file with a single link", where)
    return os.fdopen(fd, "rb")


def _read_manifest(root: Path) -> tuple[dict, bytes]:
    try:
        info = os.lstat(root / "manifest.json")
    except FileNotFoundError:
        raise _reject("manifest.json is missing: a probe must write manifest.json next to images/") from None
    except OSError as exc:
        raise _reject(f"manifest.json cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise _reject("manifest.json must be a regular file, not a link or device")
    limit = f"manifest.json is larger than {MAX_MANIFEST_BYTES // 2**20} MiB"
    if info.st_size > MAX_MANIFEST_BYTES:
        raise _reject(limit)
    with open_listed_file(root, "manifest.json") as handle:
        try:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise _reject(f"manifest.json cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _reject(limit)
    depth = setrules.json_depth(raw)
    if depth > MAX_MANIFEST_DEPTH:
        raise _reject(f"manifest.json nests {depth:,} levels deep; at most {MAX_MANIFEST_DEPTH} are allowed")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _reject("manifest.json is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise _reject(f"manifest.json is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:  # the depth scan should have caught it; never let it escape
        raise _reject(f"manifest.json nests more than {MAX_MANIFEST_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4,300-digit conversion limit
        raise _reject(f"manifest.json holds a value that cannot be read ({str(exc)[:200]})") from None
    if not isinstance(manifest, dict):
        raise _reject("manifest.json must hold a JSON object")
    return manifest, raw


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_groups(groups: object) -> None:
    if not isinstance(groups, list) or len(groups) < 2:
        raise _reject("manifest 'groups' must list two or more group names")
    if len(groups) > MAX_GROUPS:
        raise _reject(f"manifest 'groups' lists {len(groups):,} groups; at most {MAX_GROUPS} are allowed")
    for name in groups:
        if not isinstance(name, str) or not GROUP_NAME.match(name) or unprintable(name) is not None:
            raise _reject(f"group name {_shown(name)} must be 1–64 characters without '<', '>', '@', '#' "
                          "or control characters")
    if len(set(groups)) != len(groups):
        raise _reject("manifest 'groups' lists a name twice")
    lookalike = setrules.lookalike_error(groups)
    if lookalike is not None:
        raise _reject(lookalike)


def _check_header(manifest: dict, *, max_images: int, problems: Problems) -> tuple[list[str] | None, str, int]:
    """The groups (None when they are broken), compose mode and pairs per image; each field checked
    apart, so every broken one is reported."""
    schema = manifest.get("schema")
    if not _is_int(schema) or schema != SCHEMA_VERSION:
        with problems.check():
            raise _reject(f"manifest 'schema' must be {SCHEMA_VERSION}, got {_shown(schema)}")
    groups, sound_groups = manifest.get("groups"), None
    with problems.check():
        _check_groups(groups)
        sound_groups = groups
    compose = manifest.get("compose", "none")
    if not isinstance(compose, str) or compose not in COMPOSE_MODES:
        with problems.check():
            raise _reject(f"manifest 'compose' must be one of {', '.join(COMPOSE_MODES)}, got {_shown(compose)}")
        compose = "none"
    pairs_per_image = manifest.get("pairs_per_image", 1)
    if not _is_int(pairs_per_image) or not 1 <= pairs_per_image <= 20:
        with problems.check():
            raise _reject("manifest 'pairs_per_image' must be an integer from 1 to 20")
        pairs_per_image = 1
    items = manifest.get("items")
    with problems.check():
        if not isinstance(items, list) or not items:
            raise _reject("manifest 'items' must be a non-empty list", stop=True)
        if len(items) > max_images:
            raise _reject(f"the set lists {len(items)} images; the limit is {max_images}", stop=True)
    return sound_groups, compose, pairs_per_image


def _check_regions(value: object, groups: list[str] | None, width: int, height: int,
                   where: str) -> tuple[Region, ...]:
    if not isinstance(value, list) or not value:
        raise _reject("'regions' must list at least one region", where)
    if len(value) > MAX_REGIONS_PER_ITEM:
        raise _reject(f"'regions' lists {len(value):,} regions; at most {MAX_REGIONS_PER_ITEM} are allowed", where)
    regions = []
    for index, region in enumerate(value):
        at = f"{where}, regions[{index}]"
        if not isinstance(region, dict):
            raise _reject("a region must be an object with 'group' and 'box'", at)
        group = region.get("group")
        if not isinstance(group, str) or (groups is not None and group not in groups):
            raise _reject(f"group {_shown(group)} is not one of the manifest's groups {groups}", at)
        box = region.get("box")
        if not isinstance(box, list) or len(box) != 4 or not all(_is_int(v) for v in box):
            raise _reject("'box' must be four integers [x, y, w, h]", at)
        x, y, w, h = box
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise _reject(f"box {_shown(box)} must have positive size and lie inside the {width}×{height} image", at)
        regions.append(Region(group, (x, y, w, h)))
    return tuple(regions)


_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")  # the end of entropy-coded data (not stuffing, not RSTn)


def _jpeg_scans(data, where: str) -> int:
    """The number of scans (SOS markers) of a JPEG, read from its markers without decoding.

    A progressive JPEG's decoding cost is its pixel count times its scans, and the scans can be
    a few bytes each: a small file can hold thousands of them.
    """
    pos, scans, segments, size = 2, 0, 0, len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            break  # not a marker: the decoder will judge the file
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte
            continue
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _reject(f"JPEG has more than {MAX_JPEG_SEGMENTS:,} marker segments", where)
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise _reject(f"JPEG has more than {MAX_JPEG_SCANS} scans, at most {MAX_JPEG_SCANS} allowed "
                              "(re-save it as a baseline or standard progressive JPEG)", where)
            found = _JPEG_MARKER.search(data, pos)
            if found is None:
                break
            pos = found.start()
    return scans


def _png_chunks(data, where: str) -> int:
    """Count a PNG's chunks (Pillow walks each in Python, so a flood of empty chunks costs time)."""
    pos, chunks, size = 8, 0, len(data)
    while pos + 8 <= size:
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _reject(f"PNG has more than {MAX_PNG_CHUNKS:,} chunks", where)
        length = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == b"IEND":
            break
        pos += 12 + length
    return chunks


def _check_decoding_cost(handle: BinaryIO, expected: str, where: str) -> int:
    """Apply the structural decoding caps to an open image file; return its JPEG scans (1 for PNG).

    Read through a memory map: nothing is decoded and a large file is not copied into memory.
    """
    if os.fstat(handle.fileno()).st_size < 8:
        return 1  # too short to be an image: Pillow rejects it
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if expected == "JPEG" and data[:2] == b"\xff\xd8":
            return max(1, _jpeg_scans(data, where))
        if expected == "PNG" and data[:8] == b"\x89PNG\r\n\x1a\n":
            _png_chunks(data, where)
    return 1


def _check_image(handle: BinaryIO, relative: PurePosixPath, *, max_pixels: int, decode: bool,
                 where: str) -> tuple[int, int, int]:
    """Width and height as shown (EXIF applied) and the JPEG scan count of an open image file."""
    expected = FORMATS_BY_EXTENSION.get(relative.suffix.lower())
    if expected is None:
        raise _reject(f"image {str(relative)!r} must be .png, .jpg or .jpeg", where)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            scans = _check_decoding_cost(handle, expected, where)
            with Image.open(handle, formats=["PNG", "JPEG"]) as image:
                if image.format != expected:
                    raise _reject(f"image {str(relative)!r} is {image.format} by content but named {relative.suffix}", where)
                ambiguous = ambiguity(image)
                if ambiguous is not None:
                    raise _reject(f"image {str(relative)!r} {ambiguous}", where)
                width, height = image.size
                if width * height > max_pixels:
                    raise _reject(f"image {str(relative)!r} has {width}×{height} pixels; the limit is {max_pixels:,} per image", where)
                if decode:
                    image.load()
                    width, height = _upright(image).size
                elif _orientation(image) in (5, 6, 7, 8):
                    width, height = height, width  # EXIF orientation turns it a quarter
        except ImageSetRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _reject(f"image {str(relative)!r} is a decompression bomb (too many pixels)", where) from None
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for corrupt files
            raise _unreadable(str(relative), exc, where) from None
    return width, height, scans


def file_sha256(path: Path | BinaryIO) -> str:
    """The file's bytes hashed, as "sha256:<hex>" (read in 1 MiB blocks); a path or an open file."""
    if not isinstance(path, (str, os.PathLike)):
        path.seek(0)
        return "sha256:" + hashlib.file_digest(path, "sha256").hexdigest()
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def _check_item_id(entry: dict, seen_ids: set[str], where: str) -> tuple[str, str | None, str]:
    """The item's id (unique, case aside: recorded in `seen_ids`), its `base`, and where it is."""
    item_id = entry.get("id")
    if not isinstance(item_id, str) or not ITEM_ID.match(item_id):
        raise _reject("'id' must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit", where)
    where = f"item {item_id!r} ({where})"
    if item_id.casefold() in seen_ids:
        raise _reject("the id is used by an earlier item; ids must be unique, case aside", where)
    seen_ids.add(item_id.casefold())
    base = entry.get("base")
    if base is not None and (not isinstance(base, str) or not ITEM_ID.match(base)):
        raise _reject("'base' must be a short id like the item ids", where)
    return item_id, base, where


@dataclass
class _Tally:
    """What the items checked so far add up to: the set-wide caps are on these."""

    items: list = field(default_factory=list)
    seen_ids: set = field(default_factory=set)
    used_by: dict = field(default_factory=dict)  # image path key -> the item that lists it
    total: int = 0
    pixels: int = 0
    scan_pixels: int = 0
    most_scans: tuple = (0, "")


def _check_item(root: Path, entry: object, where: str, tally: _Tally, *, groups: list[str] | None, max_pixels: int,
                max_total_bytes: int, decode: bool, hash_images: bool) -> Item:
    """One item of the manifest, checked on its own (its file opened once, without following links)."""
    if not isinstance(entry, dict):
        raise _reject("each item must be an object with 'id', 'image' and 'regions'", where)
    item_id, base, where = _check_item_id(entry, tally.seen_ids, where)
    relative = _safe_relative(entry.get("image"), where)
    unportable = setrules.portable_path_error(relative)
    if unportable is not None:
        raise _reject(unportable, where)
    # One file, one observation: listing an image twice would count the same pixels twice
    # (two paths that differ only in case or normalisation are one file elsewhere).
    key = setrules.path_key(str(relative))
    if key in tally.used_by:
        raise _reject(f"image {str(relative)!r} is already listed by item {tally.used_by[key]!r}; each item needs "
                      "its own image file (paths that differ only in case or Unicode normalisation are one file)",
                      where)
    tally.used_by[key] = item_id
    info = _lstat_regular(root, relative, where)
    tally.total += info.st_size
    if tally.total > max_total_bytes:
        raise _reject(f"the images total more than {max_total_bytes // 2**20} MiB", where, stop=True)
    with open_listed_file(root, relative, where) as handle:
        width, height, scans = _check_image(handle, relative, max_pixels=max_pixels, decode=decode, where=where)
        misshapen = setrules.shape_error(width, height)
        if misshapen is not None:
            raise _reject(f"image {str(relative)!r} {misshapen}", where)
        try:
            sha256 = file_sha256(handle) if hash_images else None
        except OSError as exc:
            raise _reject(f"image {str(relative)!r} cannot be read ({exc.strerror})", where) from None
    regions = _check_regions(entry.get("regions"), groups, width, height, where)
    tally.pixels += width * height
    tally.scan_pixels += width * height * scans
    tally.most_scans = max(tally.most_scans, (scans, item_id))
    return Item(item_id, str(relative), base, regions, width, height, sha256, info.st_size)


def validate_image_set(
    root: str | os.PathLike,
    *,
    max_images: int = 5_000,
    max_pixels: int = 25_000_000,
    max_total_bytes: int = 512 * 1024 * 1024,
    decode: bool = True,
    hash_images: bool = True,
) -> ImageSet:
    """Validate the image set in `root` and return it; raise ImageSetRejected naming item and rule.

    Parameters
    ----------
    root : the directory holding manifest.json and the images.
    max_images, max_pixels, max_total_bytes : caps from the sandbox limits.
    decode : decode every image fully (catches truncated files); measurement decodes anyway.
    hash_images : compute each item's sha256; without it `Item.sha256` is None (a measurement
        chunk hashes only the images it observes).
    """
    root = Path(root)
    try:
        root_info = os.lstat(root)
    except FileNotFoundError:
        raise _reject(f"the image set directory {str(root)!r} does not exist") from None
    if not stat.S_ISDIR(root_info.st_mode):
        raise _reject("the output must be a directory")
    manifest, raw = _read_manifest(root)
    problems = Problems(ImageSetRejected, stop=(_CheckStopped,))
    groups, compose, pairs_per_image = _check_header(manifest, max_images=max_images, problems=problems)
    texts = {"title": "", "hypothesis": "", "attribute": ""}
    for key, cap, allowed in (("title", MAX_TITLE_CHARS, ""), ("hypothesis", MAX_HYPOTHESIS_CHARS, "\n\t"),
                              ("attribute", MAX_ATTRIBUTE_CHARS, "")):
        with problems.check():
            texts[key] = _check_text(manifest, key, cap, allowed=allowed)
    title, hypothesis, attribute = texts["title"], texts["hypothesis"], texts["attribute"]
    tally = _Tally()
    for index, entry in enumerate(manifest["items"]):
        with problems.check():
            tally.items.append(_check_item(root, entry, f"items[{index}]", tally, groups=groups, max_pixels=max_pixels,
                                           max_total_bytes=max_total_bytes, decode=decode, hash_images=hash_images))
    primary = None
    if not problems:  # the pre-registered test is read against a sound set only
        primary = manifest.get("primary")
        refused = primary_error(primary, groups=groups, compose=compose, items=tally.items)
        if refused is not None:
            with problems.check():
                raise _reject(refused)
    if tally.scan_pixels > MAX_MEAN_JPEG_SCANS * tally.pixels:
        with problems.check():
            raise _reject(f"the set's JPEGs average {tally.scan_pixels / tally.pixels:.1f} scans per pixel, at most "
                          f"{MAX_MEAN_JPEG_SCANS} allowed (item {tally.most_scans[1]!r} has {tally.most_scans[0]} "
                          "scans)")
    problems.raise_found()
    return ImageSet(
        root=root, manifest=manifest, title=title, hypothesis=hypothesis, attribute=attribute,
        groups=list(groups), compose=compose, pairs_per_image=pairs_per_image, items=tally.items,
        manifest_sha256="sha256:" + hashlib.sha256(raw).hexdigest(), total_bytes=tally.total, primary=primary,
    )
