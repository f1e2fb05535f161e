"""The image set a probe emits, and its validation on the trusted side.

`validate_image_set` reads `manifest.json` and every image it lists without following links,
judges formats by content, applies the caps, and either returns an `ImageSet` or raises
`ImageSetRejected` whose message names the item and the rule that failed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image, ImageOps

SCHEMA_VERSION = 1
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
COMPOSE_MODES = ("none", "pairs")
FORMATS_BY_EXTENSION = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
GROUP_NAME = re.compile(r"^[^\s<>@#][^<>@#]{0,63}$")


class ImageSetRejected(ValueError):
    """The image set breaks a rule; the message says which item and which rule."""


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

    def path_of(self, item: Item) -> Path:
        return self.root / item.image

    def open_image(self, item: Item) -> Image.Image:
        """The item's image as RGB, EXIF orientation applied (as validation measured it)."""
        with Image.open(self.path_of(item)) as raw:
            raw.load()
            image = _upright(raw)
            return image if image.mode == "RGB" else image.convert("RGB")


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


def _reject(rule: str, where: str = "") -> ImageSetRejected:
    return ImageSetRejected(f"{where}: {rule}" if where else rule)


def _safe_relative(value: object, where: str) -> PurePosixPath:
    if not isinstance(value, str) or not value or len(value) > 300:
        raise _reject("'image' must be a non-empty relative path of at most 300 characters", where)
    if "\\" in value or "\x00" in value:
        raise _reject(f"image path {value!r} may not contain backslashes or NUL", where)
    path = PurePosixPath(value)
    if path.is_absolute() or any(part in ("..", "") for part in path.parts) or value.startswith("./.."):
        raise _reject(f"image path {value!r} must stay inside the image set (no absolute paths, no '..')", where)
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


def _read_manifest(root: Path) -> tuple[dict, bytes]:
    path = root / "manifest.json"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise _reject("manifest.json is missing: a probe must write manifest.json next to images/") from None
    if not stat.S_ISREG(info.st_mode):
        raise _reject("manifest.json must be a regular file, not a link or device")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise _reject(f"manifest.json is larger than {MAX_MANIFEST_BYTES // 2**20} MiB")
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _reject("manifest.json is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise _reject(f"manifest.json is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(manifest, dict):
        raise _reject("manifest.json must hold a JSON object")
    return manifest, raw


def _check_header(manifest: dict, *, max_images: int) -> tuple[list[str], str, int]:
    if manifest.get("schema") != SCHEMA_VERSION:
        raise _reject(f"manifest 'schema' must be {SCHEMA_VERSION}, got {manifest.get('schema')!r}")
    groups = manifest.get("groups")
    if not isinstance(groups, list) or len(groups) < 2:
        raise _reject("manifest 'groups' must list two or more group names")
    for name in groups:
        if not isinstance(name, str) or not GROUP_NAME.match(name):
            raise _reject(f"group name {name!r} must be 1–64 characters without '<', '>', '@' or '#'")
    if len(set(groups)) != len(groups):
        raise _reject("manifest 'groups' lists a name twice")
    compose = manifest.get("compose", "none")
    if compose not in COMPOSE_MODES:
        raise _reject(f"manifest 'compose' must be one of {', '.join(COMPOSE_MODES)}, got {compose!r}")
    pairs_per_image = manifest.get("pairs_per_image", 1)
    if not isinstance(pairs_per_image, int) or isinstance(pairs_per_image, bool) or not 1 <= pairs_per_image <= 20:
        raise _reject("manifest 'pairs_per_image' must be an integer from 1 to 20")
    for key in ("title", "hypothesis", "attribute"):
        if key in manifest and not isinstance(manifest[key], str):
            raise _reject(f"manifest {key!r} must be a string")
    items = manifest.get("items")
    if not isinstance(items, list) or not items:
        raise _reject("manifest 'items' must be a non-empty list")
    if len(items) > max_images:
        raise _reject(f"the set lists {len(items)} images; the limit is {max_images}")
    return groups, compose, pairs_per_image


def _check_regions(value: object, groups: list[str], width: int, height: int, where: str) -> tuple[Region, ...]:
    if not isinstance(value, list) or not value:
        raise _reject("'regions' must list at least one region", where)
    regions = []
    for index, region in enumerate(value):
        at = f"{where}, regions[{index}]"
        if not isinstance(region, dict):
            raise _reject("a region must be an object with 'group' and 'box'", at)
        if region.get("group") not in groups:
            raise _reject(f"group {region.get('group')!r} is not one of the manifest's groups {groups}", at)
        box = region.get("box")
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)):
            raise _reject("'box' must be four integers [x, y, w, h]", at)
        x, y, w, h = box
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise _reject(f"box {box} must have positive size and lie inside the {width}×{height} image", at)
        regions.append(Region(region["group"], (x, y, w, h)))
    return tuple(regions)


def _check_image(path: Path, relative: PurePosixPath, *, max_pixels: int, decode: bool, where: str) -> tuple[int, int]:
    expected = FORMATS_BY_EXTENSION.get(relative.suffix.lower())
    if expected is None:
        raise _reject(f"image {str(relative)!r} must be .png, .jpg or .jpeg", where)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=["PNG", "JPEG"]) as image:
                if image.format != expected:
                    raise _reject(f"image {str(relative)!r} is {image.format} by content but named {relative.suffix}", where)
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
            raise _reject(f"image {str(relative)!r} is not a readable PNG or JPEG ({type(exc).__name__}: {exc})", where) from None
    return width, height


def file_sha256(path: Path) -> str:
    """The file's bytes hashed, as "sha256:<hex>" (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


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
    groups, compose, pairs_per_image = _check_header(manifest, max_images=max_images)
    items, seen_ids, total = [], set(), 0
    for index, entry in enumerate(manifest["items"]):
        where = f"items[{index}]"
        if not isinstance(entry, dict):
            raise _reject("each item must be an object with 'id', 'image' and 'regions'", where)
        item_id = entry.get("id")
        if not isinstance(item_id, str) or not ITEM_ID.match(item_id):
            raise _reject("'id' must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit", where)
        where = f"item {item_id!r} ({where})"
        if item_id in seen_ids:
            raise _reject("the id is used by an earlier item; ids must be unique", where)
        seen_ids.add(item_id)
        base = entry.get("base")
        if base is not None and (not isinstance(base, str) or not ITEM_ID.match(base)):
            raise _reject("'base' must be a short id like the item ids", where)
        relative = _safe_relative(entry.get("image"), where)
        info = _lstat_regular(root, relative, where)
        total += info.st_size
        if total > max_total_bytes:
            raise _reject(f"the images total more than {max_total_bytes // 2**20} MiB", where)
        width, height = _check_image(root / relative, relative, max_pixels=max_pixels, decode=decode, where=where)
        regions = _check_regions(entry.get("regions"), groups, width, height, where)
        items.append(Item(item_id, str(relative), base, regions, width, height, file_sha256(root / relative) if hash_images else None, info.st_size))
    return ImageSet(
        root=root, manifest=manifest, title=str(manifest.get("title", ""))[:300],
        hypothesis=str(manifest.get("hypothesis", ""))[:2000], attribute=str(manifest.get("attribute", ""))[:100],
        groups=list(groups), compose=compose, pairs_per_image=pairs_per_image, items=items,
        manifest_sha256="sha256:" + hashlib.sha256(raw).hexdigest(), total_bytes=total,
    )


load_image_set = validate_image_set
