"""A probe as uploaded (.py, or .zip with probe.py at its root), checked and unpacked safely.

The same checks run when a participant uploads (bounty.services.check_probe_upload) and
again on the worker before a run, so a file that changed on disk is never trusted.
"""
from __future__ import annotations

import io
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

ZIP_MAX_UNPACKED_BYTES = 50 * 1024 * 1024
ZIP_MAX_FILES = 500
ZIP_MAX_RATIO = 200  # a member that inflates more than this is treated as a zip bomb

PROBE_WRONG_TYPE = "Upload a .py file or a .zip with probe.py at its root."
PROBE_EMPTY = "The probe file is empty."
PROBE_NOT_UTF8 = "The probe .py file must be UTF-8 text."
ZIP_INVALID = "The .zip file is not a valid zip archive."
ZIP_NO_PROBE = "The .zip must contain probe.py at its root."
ZIP_UNSAFE_NAME = "The .zip holds an unsafe entry name: {name!r} (absolute, '..', or a link)."
ZIP_TOO_BIG = "The .zip unpacks to more than {limit} bytes or {files} files."
ZIP_BOMB = "The .zip entry {name!r} inflates {ratio:.0f}× — refused as a zip bomb."


class ProbeFileError(ValueError):
    """The probe file is unusable; the message tells the participant what to fix."""


def _zip_members(content: bytes) -> list[zipfile.ZipInfo]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError):
        raise ProbeFileError(ZIP_INVALID) from None
    total = 0
    for info in infos:
        mode = (info.external_attr >> 16) & 0xFFFF
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if (name.startswith(("/", "\\")) or "\\" in name or ".." in parts or "\x00" in name
                or stat.S_ISLNK(mode) or (parts and ":" in parts[0])):
            raise ProbeFileError(ZIP_UNSAFE_NAME.format(name=name))
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > ZIP_MAX_RATIO and info.file_size > 1 << 20:
            raise ProbeFileError(ZIP_BOMB.format(name=name, ratio=info.file_size / info.compress_size))
    if total > ZIP_MAX_UNPACKED_BYTES or len(infos) > ZIP_MAX_FILES:
        raise ProbeFileError(ZIP_TOO_BIG.format(limit=ZIP_MAX_UNPACKED_BYTES, files=ZIP_MAX_FILES))
    if "probe.py" not in {info.filename for info in infos}:
        raise ProbeFileError(ZIP_NO_PROBE)
    return infos


def check_probe_file(*, name: str, content: bytes) -> None:
    """Raise ProbeFileError when `content` (named `name`) is not a usable probe."""
    if not content:
        raise ProbeFileError(PROBE_EMPTY)
    lower = name.lower()
    if lower.endswith(".py"):
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            raise ProbeFileError(PROBE_NOT_UTF8) from None
        return
    if not lower.endswith(".zip"):
        raise ProbeFileError(PROBE_WRONG_TYPE)
    _zip_members(content)


def unpack_probe(probe_path: Path, dest: Path) -> Path:
    """Write the probe's files into `dest` (created, world-readable) and return it.

    Sizes are enforced while inflating, not only from the headers a forged zip could lie in.
    """
    content = Path(probe_path).read_bytes()
    check_probe_file(name=Path(probe_path).name, content=content)
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    if not Path(probe_path).name.lower().endswith(".zip"):
        target = dest / "probe.py"
        target.write_bytes(content)
        os.chmod(target, 0o644)
        return dest
    budget = ZIP_MAX_UNPACKED_BYTES
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for info in _zip_members(content):
            target = dest.joinpath(*PurePosixPath(info.filename).parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, 0o755)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "xb") as sink:
                while chunk := source.read(1 << 16):
                    budget -= len(chunk)
                    if budget < 0:
                        raise ProbeFileError(ZIP_TOO_BIG.format(limit=ZIP_MAX_UNPACKED_BYTES, files=ZIP_MAX_FILES))
                    sink.write(chunk)
            os.chmod(target, 0o644)
    for directory, subdirs, _files in os.walk(dest):
        for sub in subdirs:
            os.chmod(os.path.join(directory, sub), 0o755)
    return dest


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
