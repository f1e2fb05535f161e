"""A probe as uploaded (.py, or .zip with probe.py at its root), checked and unpacked safely.

One reading of a zip serves three places: the upload door (bounty.services.check_probe_upload)
inflates every member in memory exactly as the worker's `unpack_probe` will, the worker does it
again before a run (a file that changed on disk is never trusted), and the judge page reads the
sources through it. So what the door accepts the worker can unpack, and every way a zip can be
broken ends in ProbeFileError with a message naming the entry (docs/failure-model.md, "Uploads").
"""
from __future__ import annotations

import ast
import io
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from probekit.imageset import unprintable

ZIP_MAX_UNPACKED_BYTES = 50 * 1024 * 1024
ZIP_MAX_FILES = 500
ZIP_MAX_RATIO = 200  # a member that inflates more than this is treated as a zip bomb
ZIP_MAX_NAME_BYTES = 255  # one path component: the file systems' NAME_MAX
ZIP_MAX_PATH_BYTES = 1024
ZIP_MAX_DEPTH = 16
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}  # what every zip tool writes

PROBE_WRONG_TYPE = "Upload a .py file or a .zip with probe.py at its root."
PROBE_EMPTY = "The probe file is empty."
PROBE_NOT_UTF8 = "The probe .py file must be UTF-8 text."
ZIP_INVALID = "The .zip file is not a valid zip archive."
ZIP_NO_PROBE = "The .zip must contain probe.py at its root."
ZIP_UNSAFE_NAME = "The .zip holds an unsafe entry name: {name!r} (absolute, '..', a link or a special file)."
ZIP_BAD_NAME = "The .zip entry {name!r} has an unusable name: {why}."
ZIP_DUPLICATE = "The .zip holds {name!r} twice."
ZIP_CLASH = "The .zip holds {name!r} both as a file and as a folder."
ZIP_ENCRYPTED = "The .zip entry {name!r} is encrypted; upload an unencrypted .zip."
ZIP_METHOD = "The .zip entry {name!r} uses compression method {method}; use stored or deflated (any zip tool's default)."
ZIP_CORRUPT = "The .zip entry {name!r} is damaged ({why}); create the .zip again."
ZIP_TOO_BIG = "The .zip unpacks to more than {limit} bytes or {files} files."
ZIP_BOMB = "The .zip entry {name!r} inflates {ratio:.0f}× — refused as a zip bomb."
PROBE_SYNTAX = "{name} line {line}: {message} — fix it and upload again (nothing was stored)."
PROBE_TOO_NESTED = "{name} is nested too deeply for Python to read; simplify it and upload again."


class ProbeFileError(ValueError):
    """The probe file is unusable; the message tells the participant what to fix."""


def _name_problem(name: str) -> str | None:
    """Why `name` cannot be written as given on the worker, or None."""
    path = name.removesuffix("/")
    parts = path.split("/")
    if not path or any(part in ("", ".") for part in parts):
        return "empty or '.' path components"
    if unprintable(name) is not None:
        return "control or invisible characters"
    if len(name.encode("utf-8", "surrogatepass")) > ZIP_MAX_PATH_BYTES or len(parts) > ZIP_MAX_DEPTH:
        return f"longer than {ZIP_MAX_PATH_BYTES} bytes or deeper than {ZIP_MAX_DEPTH} folders"
    if any(len(part.encode("utf-8", "surrogatepass")) > ZIP_MAX_NAME_BYTES for part in parts):
        return f"a name longer than {ZIP_MAX_NAME_BYTES} bytes"
    return None


def _check_member(info: zipfile.ZipInfo) -> None:
    name = info.filename
    mode = (info.external_attr >> 16) & 0xFFFF
    parts = PurePosixPath(name.replace("\\", "/")).parts
    kind = stat.S_IFMT(mode)
    if (name.startswith(("/", "\\")) or "\\" in name or ".." in parts or "\x00" in name
            or (kind and kind not in (stat.S_IFREG, stat.S_IFDIR)) or (parts and ":" in parts[0])):
        raise ProbeFileError(ZIP_UNSAFE_NAME.format(name=name))
    problem = _name_problem(name)
    if problem:
        raise ProbeFileError(ZIP_BAD_NAME.format(name=name, why=problem))
    if info.flag_bits & 0x1:
        raise ProbeFileError(ZIP_ENCRYPTED.format(name=name))
    if info.compress_type not in ZIP_METHODS:
        raise ProbeFileError(ZIP_METHOD.format(name=name, method=info.compress_type))
    if info.compress_size and info.file_size / info.compress_size > ZIP_MAX_RATIO and info.file_size > 1 << 20:
        raise ProbeFileError(ZIP_BOMB.format(name=name, ratio=info.file_size / info.compress_size))


def _zip_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The members, each checked by its headers; the tree they make has no duplicate or clash."""
    infos = archive.infolist()
    if len(infos) > ZIP_MAX_FILES:
        raise ProbeFileError(ZIP_TOO_BIG.format(limit=ZIP_MAX_UNPACKED_BYTES, files=ZIP_MAX_FILES))
    files: set[str] = set()
    folders: set[str] = set()
    total = 0
    for info in infos:
        _check_member(info)
        path = info.filename.rstrip("/")
        if not info.is_dir() and path in files:
            raise ProbeFileError(ZIP_DUPLICATE.format(name=path))
        parents = ["/".join(path.split("/")[:depth]) for depth in range(1, path.count("/") + 1)]
        clash = next((p for p in parents if p in files), None)
        if clash is None and path in (files if info.is_dir() else folders):
            clash = path
        if clash is not None:
            raise ProbeFileError(ZIP_CLASH.format(name=clash))
        (folders if info.is_dir() else files).add(path)  # a folder listed twice is harmless
        folders.update(parents)
        total += info.file_size
    if total > ZIP_MAX_UNPACKED_BYTES:
        raise ProbeFileError(ZIP_TOO_BIG.format(limit=ZIP_MAX_UNPACKED_BYTES, files=ZIP_MAX_FILES))
    if "probe.py" not in files:
        raise ProbeFileError(ZIP_NO_PROBE)
    return infos


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> Iterator[bytes]:
    """The member's bytes as inflated, counted against `budget` and checked against its header."""
    written = 0
    try:
        with archive.open(info) as source:
            while chunk := source.read(1 << 16):
                written += len(chunk)
                budget[0] -= len(chunk)
                if budget[0] < 0:
                    raise ProbeFileError(ZIP_TOO_BIG.format(limit=ZIP_MAX_UNPACKED_BYTES, files=ZIP_MAX_FILES))
                yield chunk
    except ProbeFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError, NotImplementedError) as exc:
        raise ProbeFileError(ZIP_CORRUPT.format(name=info.filename, why=str(exc)[:120] or type(exc).__name__)) from None
    if written != info.file_size:
        raise ProbeFileError(ZIP_CORRUPT.format(name=info.filename, why="its size does not match its header"))


def _open_zip(content: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError, EOFError):
        raise ProbeFileError(ZIP_INVALID) from None


def _walk_zip(content: bytes, visit: Callable[[zipfile.ZipInfo, Iterator[bytes] | None], None],
              wanted: Callable[[zipfile.ZipInfo], bool] = lambda info: True) -> None:
    """Check every member, then hand each wanted one to `visit` with its inflated bytes (None for a folder)."""
    budget = [ZIP_MAX_UNPACKED_BYTES]
    with _open_zip(content) as archive:
        for info in _zip_members(archive):
            if wanted(info):
                visit(info, None if info.is_dir() else _inflate(archive, info, budget))


def _drain(_info: zipfile.ZipInfo, chunks: Iterator[bytes] | None) -> None:
    for _chunk in chunks or ():
        pass


def check_probe_file(*, name: str, content: bytes) -> None:
    """Raise ProbeFileError when `content` (named `name`) is not a usable probe.

    A .zip is inflated in memory member by member, exactly as `unpack_probe` will write it.
    """
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
    _walk_zip(content, _drain)


def _check_syntax(name: str, source: bytes) -> None:
    try:
        ast.parse(source, filename=name)  # parsed only: nothing of the probe runs on the trusted side
    except SyntaxError as exc:
        raise ProbeFileError(PROBE_SYNTAX.format(name=name, line=exc.lineno or 1, message=exc.msg)) from None
    except ValueError as exc:  # null bytes: Python 3.11 says so with a ValueError
        raise ProbeFileError(PROBE_SYNTAX.format(name=name, line=1, message=str(exc))) from None
    except (RecursionError, MemoryError):
        raise ProbeFileError(PROBE_TOO_NESTED.format(name=name)) from None


def check_probe_syntax(*, name: str, content: bytes) -> None:
    """Raise ProbeFileError naming the file and line of the first Python syntax error.

    For a .zip every .py file is read whole, through the same checks as `check_probe_file`;
    call this after that check. The worker does not repeat it: a probe that parses may still fail
    as it runs, and that is the probe's own result.
    """
    if name.lower().endswith(".zip"):
        sources = zip_python_sources(content=content, max_files=ZIP_MAX_FILES, max_bytes=ZIP_MAX_UNPACKED_BYTES)
    else:
        sources = [("probe.py", content)]
    for source_name, source in sources:
        _check_syntax(source_name, source)


def unpack_probe(probe_path: Path, dest: Path) -> Path:
    """Write the probe's files into `dest` (created, world-readable) and return it.

    Sizes are enforced while inflating, not only from the headers a forged zip could lie in.
    """
    content = Path(probe_path).read_bytes()
    if not content:
        raise ProbeFileError(PROBE_EMPTY)
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    if not Path(probe_path).name.lower().endswith(".zip"):
        check_probe_file(name=Path(probe_path).name, content=content)
        target = dest / "probe.py"
        target.write_bytes(content)
        os.chmod(target, 0o644)
        return dest

    def write(info: zipfile.ZipInfo, chunks: Iterator[bytes] | None) -> None:
        target = dest.joinpath(*info.filename.rstrip("/").split("/"))
        if chunks is None:
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as sink:
            sink.writelines(chunks)
        os.chmod(target, 0o644)

    _walk_zip(content, write)
    for directory, subdirs, _files in os.walk(dest):
        for sub in subdirs:
            os.chmod(os.path.join(directory, sub), 0o755)
    return dest


def zip_python_sources(*, content: bytes, max_files: int = 20, max_bytes: int = 200_000) -> list[tuple[str, bytes]]:
    """The .py files of a zipped probe to show (probe.py first), each cut to `max_bytes`.

    Read through the same checks as at the door, so a stored zip that is broken in any way
    raises ProbeFileError instead of failing the page.
    """
    sources: dict[str, bytes] = {}

    def keep(info: zipfile.ZipInfo, chunks: Iterator[bytes] | None) -> None:
        data = bytearray()
        for chunk in chunks or ():
            if len(data) < max_bytes:
                data += chunk[:max_bytes - len(data)]
        if chunks is not None:
            sources[info.filename] = bytes(data)

    _walk_zip(content, keep, wanted=lambda info: info.filename.endswith(".py"))
    names = sorted(sources, key=lambda n: (n != "probe.py", n))  # probe.py first: it is what runs
    return [(n, sources[n]) for n in names[:max_files]]
