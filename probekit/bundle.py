"""Reproducibility bundles: a published finding as one zip anyone can re-measure (`probekit verify`).

The platform writes the bundle with `write_bundle`; `verify_bundle` unpacks it safely, runs the
very same measurement (`probekit.measurement`) with the settings it records, and says whether
the recomputed metrics document is byte-identical to the published one, or what differs.

Layout of the zip::

    bundle.json          what was measured and how (model, versions, seed, settings, hashes)
    metrics.json         the published metrics document, byte for byte as stored
    probe/<name>         the probe as submitted (.py or .zip)
    imageset/…           manifest.json and the images the measurement read
    replication/…        when the finding was replicated on a fresh draw: the confirmatory
                         document (replication/metrics.json) and the set it measured
                         (replication/imageset/…); bundle.json's "replication" names both, the
                         status and the seed of the fresh draw (PROBE_SEED)
"""
from __future__ import annotations

import hashlib
import json
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from probekit.imageset import ImageSetRejected, file_sha256
from probekit.measurement import document_dumps, measure_image_set
from probekit.models import get_model
from probekit.models.registered import registered_file
from probekit.replication import compare as compare_replication
from probekit.setrules import path_key, portable_path_error

BUNDLE_FORMAT = 1
BUNDLE_JSON = "bundle.json"
DOCUMENT_FILE = "metrics.json"
PROBE_DIR = "probe"
IMAGE_SET_DIR = "imageset"
REPLICATION_DIR = "replication"
# Fixed entry times: the same finding always gives the same zip bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = 256 * 2**20
MAX_TOTAL_BYTES = 4 * 2**30
MAX_JSON_BYTES = 64 * 2**20
MAX_RATIO = 200  # a member inflating more than this (and past 1 MiB) is treated as a zip bomb

# The keyword arguments of measure_image_set a bundle may set, and the type each must have.
SETTING_TYPES = {
    "model": str, "variants": list, "ratios": (list, type(None)), "compose_options": (dict, type(None)),
    "generalization": bool, "max_images": int, "max_pixels": int,
}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

NOT_A_ZIP = "{path} is not a zip archive"
UNSAFE_MEMBER = ("the bundle holds an unsafe entry {name!r}: absolute, '..', a link, or outside bundle.json, metrics.json, "
                 "probe/, imageset/ and replication/")
TOO_BIG = "the bundle unpacks to more than {limit}"
ZIP_BOMB = "the bundle's entry {name!r} inflates {ratio:.0f}× — refused as a zip bomb"
MISSING_MEMBER = "the bundle has no {name}"
BAD_JSON = "the bundle's {name} is not valid JSON: {error}"
BAD_FORMAT = "bundle.json has format {found!r}; this probekit reads format {expected}"
BAD_SETTING = "bundle.json setting {key!r} {problem}"


class BundleError(ValueError):
    """The bundle is unusable; the message says what is wrong with it."""


# --- writing (the platform) ---------------------------------------------------------------------------


def image_set_files(directory: Path) -> list[Path]:
    """The regular files of an image set directory in a fixed order; links are never followed."""
    return [p for p in sorted(Path(directory).rglob("*")) if not p.is_symlink() and p.is_file()]


def model_file(name: str) -> Path | None:
    """The weights file a model runs, where it has one (None for the numerical models).

    Hook for organizers' registered models: a public one names its ONNX file here and the bundle
    then carries its card; a private one stays None (only the platform may run it).
    """
    model = get_model(name)
    if model.base_name == "u2netp":
        from probekit.models.u2net import weights_path

        return Path(model.weights) if model.weights else weights_path()
    return registered_file(model.base_name)


def model_facts(name: str) -> dict:
    """Name, version, card and weights sha256 of a target model as this installation has it."""
    model = get_model(name)
    weights = model_file(name)
    return {"name": name, "version": model.version, "card": model.card.to_json(),
            "weights_sha256": file_sha256(weights) if weights is not None else None}


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    archive.writestr(info, data)


def write_bundle(target, *, document_text: str, image_set_dir: Path, settings: dict, seed: int,
                 probe_name: str | None = None, probe_bytes: bytes | None = None, finding: dict | None = None,
                 replication: dict | None = None) -> dict:
    """Write the bundle of one measured finding to `target` (a path or a binary file) and return its bundle.json.

    `settings` are measure_image_set's keyword arguments from the challenge, `document_text` the
    stored document; `finding` is what the platform says about it (id, identifier, URL, title).
    `replication`, for a finding measured again on a fresh draw: {"status", "probe_seed",
    "document_text", "image_set_dir"} (the confirmatory document, measured with the same settings and seed).
    """
    unknown = set(settings) - set(SETTING_TYPES)
    if unknown:
        raise BundleError(f"settings not recorded in a bundle: {', '.join(sorted(unknown))}")
    document_bytes = document_text.encode()
    document = json.loads(document_text)
    probe = None
    if probe_bytes is not None:
        name = SAFE_NAME.sub("-", (probe_name or "probe.py").rsplit("/", 1)[-1]).lstrip(".") or "probe.py"
        probe = {"path": f"{PROBE_DIR}/{name}", "sha256": "sha256:" + hashlib.sha256(probe_bytes).hexdigest()}
    meta = {
        "format": BUNDLE_FORMAT,
        "finding": finding or {},
        "model": {**model_facts(settings["model"]), "version": document.get("model_version")},
        "variants": document.get("variants", []),
        "versions": document.get("versions", {}),
        "seed": seed,
        "settings": dict(settings),
        "probe": probe,
        "document": {"path": DOCUMENT_FILE, "sha256": "sha256:" + hashlib.sha256(document_bytes).hexdigest()},
        "verify": "probekit verify BUNDLE.zip  (pip install ./probekit from the platform's repository)",
    }
    if replication is not None:
        replication_bytes = replication["document_text"].encode()
        meta["replication"] = {
            "status": replication["status"], "probe_seed": replication["probe_seed"],
            "document": {"path": f"{REPLICATION_DIR}/{DOCUMENT_FILE}",
                         "sha256": "sha256:" + hashlib.sha256(replication_bytes).hexdigest()},
            "image_set": f"{REPLICATION_DIR}/{IMAGE_SET_DIR}",
        }
    root = Path(image_set_dir)
    with zipfile.ZipFile(target, "w") as archive:
        _add(archive, BUNDLE_JSON, json.dumps(meta, indent=1, sort_keys=True).encode())
        _add(archive, DOCUMENT_FILE, document_bytes)
        if probe is not None:
            _add(archive, probe["path"], probe_bytes)
        for path in image_set_files(root):
            _add(archive, f"{IMAGE_SET_DIR}/{path.relative_to(root).as_posix()}", path.read_bytes())
        if replication is not None:
            _add(archive, meta["replication"]["document"]["path"], replication_bytes)
            second = Path(replication["image_set_dir"])
            for path in image_set_files(second):
                _add(archive, f"{meta['replication']['image_set']}/{path.relative_to(second).as_posix()}",
                     path.read_bytes())
    return meta


# --- reading (anyone) ---------------------------------------------------------------------------------


@dataclass
class Bundle:
    meta: dict
    document_bytes: bytes
    image_set_dir: Path
    probe_path: Path | None


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    name = info.filename
    mode = (info.external_attr >> 16) & 0xFFFF
    parts = PurePosixPath(name).parts
    if (not name or name.startswith("/") or "\\" in name or "\x00" in name or ".." in parts or stat.S_ISLNK(mode)
            or any(":" in part for part in parts) or not parts
            or not (name in (BUNDLE_JSON, DOCUMENT_FILE) or (parts[0] in (PROBE_DIR, IMAGE_SET_DIR, REPLICATION_DIR) and len(parts) > 1))):
        raise BundleError(UNSAFE_MEMBER.format(name=name))
    unportable = portable_path_error(PurePosixPath(*parts[1:])) if len(parts) > 1 else None
    if unportable is not None:  # a Windows drive, device or stripped name would land elsewhere there
        raise BundleError(f"the bundle's entry {name!r} is not portable: {unportable}")
    return parts


def _check_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BundleError(TOO_BIG.format(limit=f"{MAX_MEMBERS} files"))
    total, seen = 0, set()
    for info in infos:
        _member_parts(info)
        if path_key(info.filename.rstrip("/")) in seen:
            raise BundleError(f"the bundle holds {info.filename!r} twice (case and Unicode normalisation aside)")
        seen.add(path_key(info.filename.rstrip("/")))
        if info.file_size > MAX_MEMBER_BYTES:
            raise BundleError(TOO_BIG.format(limit=f"{MAX_MEMBER_BYTES // 2**20} MiB in {info.filename!r}"))
        if info.compress_size and info.file_size > 1 << 20 and info.file_size / info.compress_size > MAX_RATIO:
            raise BundleError(ZIP_BOMB.format(name=info.filename, ratio=info.file_size / info.compress_size))
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise BundleError(TOO_BIG.format(limit=f"{MAX_TOTAL_BYTES // 2**30} GiB"))
    return infos


def _extract(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest: Path) -> None:
    """Inflate every entry under `dest`, counting bytes as they come: headers can lie."""
    budget = MAX_TOTAL_BYTES
    for info in infos:
        target = dest.joinpath(*_member_parts(info))
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with archive.open(info) as source, open(target, "xb") as sink:
            while chunk := source.read(1 << 16):
                written += len(chunk)
                budget -= len(chunk)
                if written > max(info.file_size, 0) or budget < 0:
                    raise BundleError(TOO_BIG.format(limit=f"its declared size in {info.filename!r}"))
                sink.write(chunk)


def _json_member(dest: Path, name: str) -> object:
    path = dest / name
    if not path.is_file():
        raise BundleError(MISSING_MEMBER.format(name=name))
    if path.stat().st_size > MAX_JSON_BYTES:
        raise BundleError(TOO_BIG.format(limit=f"{MAX_JSON_BYTES // 2**20} MiB in {name}"))
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(BAD_JSON.format(name=name, error=exc)) from None


def _checked_settings(meta: dict) -> tuple[dict, int]:
    settings = meta.get("settings")
    if not isinstance(settings, dict):
        raise BundleError(BAD_SETTING.format(key="settings", problem="must be an object"))
    for key, value in settings.items():
        if key not in SETTING_TYPES:
            raise BundleError(BAD_SETTING.format(key=key, problem="is not a measurement setting"))
        if not isinstance(value, SETTING_TYPES[key]) or (SETTING_TYPES[key] is int and isinstance(value, bool)):
            raise BundleError(BAD_SETTING.format(key=key, problem=f"has the wrong type ({type(value).__name__})"))
    if "model" not in settings:
        raise BundleError(BAD_SETTING.format(key="model", problem="is missing"))
    seed = meta.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise BundleError(BAD_SETTING.format(key="seed", problem="must be an integer"))
    return settings, seed


def open_bundle(path, dest: Path) -> Bundle:
    """Unpack the bundle at `path` into the empty directory `dest` and read what it says."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BundleError(NOT_A_ZIP.format(path=path) + f" ({exc})") from None
    with archive:
        try:
            _extract(archive, _check_members(archive), dest)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as exc:
            raise BundleError(f"the bundle could not be unpacked: {exc}") from None
    meta = _json_member(dest, BUNDLE_JSON)
    if not isinstance(meta, dict):
        raise BundleError("bundle.json must be an object")
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(BAD_FORMAT.format(found=meta.get("format"), expected=BUNDLE_FORMAT))
    _checked_settings(meta)
    if not (dest / DOCUMENT_FILE).is_file():
        raise BundleError(MISSING_MEMBER.format(name=DOCUMENT_FILE))
    _json_member(dest, DOCUMENT_FILE)
    if not (dest / IMAGE_SET_DIR).is_dir():
        raise BundleError(MISSING_MEMBER.format(name=f"{IMAGE_SET_DIR}/ (the image set)"))
    probe = meta.get("probe")
    probe_path = None
    if isinstance(probe, dict) and isinstance(probe.get("path"), str):
        candidate = dest.joinpath(*PurePosixPath(probe["path"]).parts)
        if PurePosixPath(probe["path"]).parts[:1] != (PROBE_DIR,) or ".." in PurePosixPath(probe["path"]).parts \
                or not candidate.is_file():
            raise BundleError(MISSING_MEMBER.format(name=f"probe file {probe['path']!r}"))
        probe_path = candidate
    return Bundle(meta=meta, document_bytes=(dest / DOCUMENT_FILE).read_bytes(), image_set_dir=dest / IMAGE_SET_DIR,
                  probe_path=probe_path)


# --- verifying ----------------------------------------------------------------------------------------

# Fields of a test whose change is worth naming, in this order.
TEST_FIELDS = ("estimate", "ci", "p_value", "p_holm", "n")


def _difference(what: str, name: str, published, recomputed, message: str) -> dict:
    return {"what": what, "name": name, "published": published, "recomputed": recomputed, "message": message}


def _image_differences(published: dict, recomputed: dict) -> list[dict]:
    old, new = published.get("images") or {}, recomputed.get("images") or {}
    rows = []
    for item in sorted(set(old) | set(new)):
        if old.get(item) != new.get(item):
            if item not in new:
                message = f"image {item!r} is published but not in the bundle's image set"
            elif item not in old:
                message = f"image {item!r} is in the bundle's image set but not in the published document"
            else:
                message = f"image {item!r} differs: published {old[item]}, bundle {new[item]}"
            rows.append(_difference("image", item, old.get(item), new.get(item), message))
    return rows


def _test_differences(published: list, recomputed: list) -> list[dict]:
    old = {t.get("id"): t for t in published if isinstance(t, dict)}
    new = {t.get("id"): t for t in recomputed if isinstance(t, dict)}
    rows = []
    for test_id in [*old, *[t for t in new if t not in old]]:
        before, after = old.get(test_id), new.get(test_id)
        if before == after:
            continue
        if before is None or after is None:
            where = "only recomputed" if before is None else "only published"
            rows.append(_difference("test", str(test_id), before, after, f"test {test_id} is {where}"))
            continue
        moved = [f"{field} {before.get(field)} → {after.get(field)}" for field in TEST_FIELDS
                 if before.get(field) != after.get(field)]
        others = sorted(k for k in set(before) | set(after) if k not in TEST_FIELDS and before.get(k) != after.get(k))
        detail = "; ".join(moved + ([f"also {', '.join(others)}"] if others else []))
        rows.append(_difference("test", str(test_id), {f: before.get(f) for f in TEST_FIELDS},
                                {f: after.get(f) for f in TEST_FIELDS}, f"test {test_id} moved: {detail}"))
    return rows


def compare_documents(published: dict, recomputed: dict) -> list[dict]:
    """What differs between two metrics documents: library versions, model, hashes, tests, other fields."""
    rows = []
    old_versions, new_versions = published.get("versions") or {}, recomputed.get("versions") or {}
    for library in sorted(set(old_versions) | set(new_versions)):
        if old_versions.get(library) != new_versions.get(library):
            rows.append(_difference("library", library, old_versions.get(library), new_versions.get(library),
                                    f"{library} {old_versions.get(library)} was published, {new_versions.get(library)} is installed here"))
    if published.get("model_version") != recomputed.get("model_version"):
        rows.append(_difference("model", str(published.get("model")), published.get("model_version"),
                                recomputed.get("model_version"),
                                f"model {published.get('model')} version {published.get('model_version')} was published, "
                                f"{recomputed.get('model_version')} runs here"))
    old_hashes, new_hashes = published.get("hashes") or {}, recomputed.get("hashes") or {}
    for name in ("manifest", "probe"):
        if old_hashes.get(name) != new_hashes.get(name):
            rows.append(_difference(name, name, old_hashes.get(name), new_hashes.get(name),
                                    f"the {name}'s hash differs: published {old_hashes.get(name)}, bundle {new_hashes.get(name)}"))
    rows += _image_differences(old_hashes, new_hashes)
    old_models, new_models = old_hashes.get("models") or {}, new_hashes.get("models") or {}
    for name in sorted(set(old_models) | set(new_models)):
        if name != published.get("model") and old_models.get(name) != new_models.get(name):
            rows.append(_difference("model", name, old_models.get(name), new_models.get(name),
                                    f"model {name} version {old_models.get(name)} was published, {new_models.get(name)} runs here"))
    rows += _test_differences(published.get("tests") or [], recomputed.get("tests") or [])
    for key in sorted(set(published) | set(recomputed)):
        if key not in ("versions", "model_version", "hashes", "tests") and published.get(key) != recomputed.get(key):
            rows.append(_difference("field", key, published.get(key), recomputed.get(key),
                                    f"field {key!r} differs: published {json.dumps(published.get(key))[:200]}, "
                                    f"recomputed {json.dumps(recomputed.get(key))[:200]}"))
    return rows


def verify_bundle(path, *, workers: int = 1) -> dict:
    """Re-measure a bundle: {"match", "published_sha256", "recomputed_sha256", "differences"}.

    Raises BundleError when the bundle itself is unusable (unsafe, incomplete, malformed).
    """
    with tempfile.TemporaryDirectory(prefix="probekit-verify-") as tmp:
        bundle = open_bundle(path, Path(tmp))
        meta = bundle.meta
        settings, seed = _checked_settings(meta)
        published_sha = "sha256:" + hashlib.sha256(bundle.document_bytes).hexdigest()
        published = json.loads(bundle.document_bytes)
        differences = []
        claimed = (meta.get("document") or {}).get("sha256")
        if claimed != published_sha:
            differences.append(_difference("document", DOCUMENT_FILE, claimed, published_sha,
                                           f"metrics.json is not the document bundle.json names ({claimed})"))
        probe_sha = file_sha256(bundle.probe_path) if bundle.probe_path else (published.get("hashes") or {}).get("probe")
        weights_claimed = (meta.get("model") or {}).get("weights_sha256")
        try:
            weights_here = model_facts(settings["model"])["weights_sha256"]
            document = measure_image_set(bundle.image_set_dir, seed=seed, probe_sha256=probe_sha, workers=workers,
                                         **settings)
        except ImageSetRejected as exc:
            raise BundleError(f"the bundle's image set is rejected: {exc}") from None
        except (ValueError, RuntimeError) as exc:  # unknown model or variant, bad compose options, altered weights
            raise BundleError(f"the bundle cannot be measured here: {exc}") from None
        recomputed_text = document_dumps(document)
        recomputed_sha = "sha256:" + hashlib.sha256(recomputed_text.encode()).hexdigest()
        if weights_claimed != weights_here:
            differences.append(_difference("weights", settings["model"], weights_claimed, weights_here,
                                           f"the weights of {settings['model']} differ: published {weights_claimed}, here {weights_here}"))
        match = recomputed_text.encode() == bundle.document_bytes
        if not match:
            differences += compare_documents(published, document)
            if not differences:
                differences.append(_difference("document", DOCUMENT_FILE, published_sha, recomputed_sha,
                                               "the documents' bytes differ but every field is equal (encoding)"))
        result = {"match": match and not differences, "published_sha256": published_sha,
                  "recomputed_sha256": recomputed_sha, "differences": differences}
        if isinstance(meta.get("replication"), dict):
            result["replication"] = _verify_replication(Path(tmp), meta["replication"], published, settings=settings,
                                                        seed=seed, probe_sha=probe_sha, workers=workers)
            result["match"] = result["match"] and result["replication"]["match"]
        return result


def _verify_replication(root: Path, claimed: dict, published: dict, *, settings: dict, seed: int, probe_sha,
                        workers: int) -> dict:
    """Re-measure the confirmatory set and re-judge the replication: {"match", "status",
    "published_sha256", "recomputed_sha256", "differences"}."""
    document_path = root / REPLICATION_DIR / DOCUMENT_FILE
    set_dir = root / REPLICATION_DIR / IMAGE_SET_DIR
    if not document_path.is_file() or not set_dir.is_dir():
        raise BundleError(MISSING_MEMBER.format(name=f"{REPLICATION_DIR}/ (the confirmatory document and set)"))
    published_bytes = document_path.read_bytes()
    published_sha = "sha256:" + hashlib.sha256(published_bytes).hexdigest()
    try:
        document = measure_image_set(set_dir, seed=seed, probe_sha256=probe_sha, workers=workers, **settings)
    except ImageSetRejected as exc:
        raise BundleError(f"the bundle's confirmatory image set is rejected: {exc}") from None
    recomputed_text = document_dumps(document)
    differences = []
    if (claimed.get("document") or {}).get("sha256") != published_sha:
        differences.append(_difference("document", str(document_path.relative_to(root)), claimed.get("document"),
                                       published_sha, "replication/metrics.json is not the document bundle.json names"))
    if recomputed_text.encode() != published_bytes:
        differences += compare_documents(json.loads(published_bytes), document) or [_difference(
            "document", "replication/metrics.json", published_sha, None, "the confirmatory documents' bytes differ")]
    status, _tests = compare_replication(published, document)
    if status != claimed.get("status"):
        differences.append(_difference("replication", "status", claimed.get("status"), status,
                                       f"the replication recomputed is {status}, the bundle says {claimed.get('status')}"))
    return {"match": not differences, "status": status, "probe_seed": claimed.get("probe_seed"),
            "published_sha256": published_sha,
            "recomputed_sha256": "sha256:" + hashlib.sha256(recomputed_text.encode()).hexdigest(),
            "differences": differences}


__all__ = ["Bundle", "BundleError", "compare_documents", "image_set_files", "model_facts", "model_file",
           "open_bundle", "verify_bundle", "write_bundle"]
