"""Object storage: the platform's files behind Django's storage API, on one host or many.

Two storages (settings.STORAGES): "default" holds the uploaded probes (the FileField's), "blobs"
everything the pipeline produces, by key:

    runs/<run id>/…                       a run's copied-out image set (ImageSet.path is its key)
    artifacts/measurement-<id>/<name>.png  a measurement's plots and contact sheet
    observations/measurement-<id>/…       a split measurement's chunk observations, until merged
    models/<name>/model.onnx, card.json    an organizer's registered model

The embedded default is the local filesystem under VAR_DIR, where these keys are the very paths
the pipeline writes, so nothing is copied. With S3_BUCKET set both storages are one S3 bucket
(django-storages): a worker fetches what a task needs into a private scratch directory under
SCRATCH_DIR, writes its results there, uploads them, and removes the directory when the task ends,
whatever happened; no two hosts share a disk (docs/operations.md).

Every storage fault (the server away, a refused request) is raised as `StorageUnavailable`, one of
the platform's passing faults: the task is retried, never blamed on the probe.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages

BLOBS = "blobs"
# The key prefixes of the blobs storage (the module's docstring).
RUNS, ARTIFACTS, OBSERVATIONS, MODELS = "runs", "artifacts", "observations", "models"
# Uploads and downloads of a tree run this many requests at once (S3 round trips dominate).
PARALLEL_REQUESTS = 8


class StorageUnavailable(Exception):
    """The object storage could not be read or written (a passing fault of the platform)."""


def _faults() -> tuple[type[BaseException], ...]:
    faults: list[type[BaseException]] = [OSError]
    with contextlib.suppress(ImportError):
        from botocore.exceptions import BotoCoreError, ClientError
        faults += [BotoCoreError, ClientError]
    return tuple(faults)


FAULTS = _faults()


@contextlib.contextmanager
def _named_faults(what: str) -> Iterator[None]:
    try:
        yield
    except StorageUnavailable:
        raise
    except FAULTS as exc:
        raise StorageUnavailable(f"object storage: could not {what} ({type(exc).__name__}: {exc})") from exc


def blob_storage() -> Storage:
    return storages[BLOBS]


def is_local(storage: Storage | None = None) -> bool:
    """True when `storage` (default: the blobs) is this host's filesystem, where keys are paths."""
    return isinstance(storage or blob_storage(), FileSystemStorage)


def key_of(*parts: str) -> str:
    """A storage key from parts, refusing anything that climbs out (`..`, absolute parts)."""
    key = PurePosixPath(*parts)
    if key.is_absolute() or ".." in key.parts or not key.parts:
        raise ValueError(f"not a storage key: {'/'.join(parts)!r}")
    return key.as_posix()


def local_path(key: str) -> Path:
    """Where `key` lives on this host's filesystem storage (only when `is_local()`)."""
    return Path(blob_storage().path(key_of(key)))


# --- scratch -------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scratch_sweep() -> list[str]:
    """Remove the scratch directories of this host's processes that died (a killed worker's)."""
    root = Path(settings.SCRATCH_DIR)
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in root.iterdir():
            parts = entry.name.split("-")
            if len(parts) >= 3 and parts[-2].isdigit() and not _pid_alive(int(parts[-2])):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
    return removed


@contextlib.contextmanager
def scratch(label: str = "task") -> Iterator[Path]:
    """A private directory for one task under SCRATCH_DIR, removed when the block ends.

    Its name carries the process id, so the next task on this host removes what a killed worker left."""
    root = Path(settings.SCRATCH_DIR)
    root.mkdir(parents=True, exist_ok=True)
    scratch_sweep()
    directory = Path(tempfile.mkdtemp(prefix=f"{label}-{os.getpid()}-", dir=root))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- single objects ------------------------------------------------------------------------------


def exists(key: str) -> bool:
    with _named_faults(f"look up {key}"):
        return blob_storage().exists(key_of(key))


def read_bytes(key: str) -> bytes | None:
    """The object's bytes, or None when there is no such object."""
    storage = blob_storage()
    with _named_faults(f"read {key}"):
        if not storage.exists(key_of(key)):
            return None
        with storage.open(key_of(key), "rb") as handle:
            return handle.read()


def open_blob(key: str):
    """An open binary file of the object (the caller closes it), or None when there is none."""
    storage = blob_storage()
    with _named_faults(f"open {key}"):
        if not storage.exists(key_of(key)):
            return None
        return storage.open(key_of(key), "rb")


def put_file(key: str, path: str | os.PathLike) -> None:
    storage = blob_storage()
    key = key_of(key)
    if is_local(storage) and Path(storage.path(key)).resolve() == Path(path).resolve():
        return  # already where the key says
    with _named_faults(f"store {key}"), open(path, "rb") as handle:
        storage.save(key, File(handle, name=key))


def put_bytes(key: str, data: bytes) -> None:
    with _named_faults(f"store {key}"):
        blob_storage().save(key_of(key), ContentFile(data, name=key))


# --- trees ---------------------------------------------------------------------------------------


def _local_files(directory: Path) -> list[Path]:
    """Regular files under `directory`, links never followed."""
    files = []
    for dirpath, _dirnames, filenames in os.walk(directory, followlinks=False):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                files.append(path)
    return sorted(files)


def tree_names(prefix: str) -> list[str]:
    """Every object under `prefix`, as paths relative to it (sorted)."""
    storage = blob_storage()
    prefix = key_of(prefix)
    names: list[str] = []
    stack = [""]
    with _named_faults(f"list {prefix}"):
        if is_local(storage) and not Path(storage.path(prefix)).is_dir():
            return []
        while stack:
            sub = stack.pop()
            dirs, files = storage.listdir(f"{prefix}/{sub}" if sub else prefix)
            names += [f"{sub}{name}" for name in files]
            stack += [f"{sub}{name}/" for name in dirs]
    return sorted(names)


def _download(storage: Storage, name: str, target: Path) -> None:
    """One object of `storage` into the local file `target`, in 1 MiB pieces."""
    with _named_faults(f"read {name}"), storage.open(name, "rb") as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)


def _parallel(function, items) -> None:
    items = list(items)
    if len(items) <= 1:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(max_workers=min(PARALLEL_REQUESTS, len(items))) as pool:
        for _ in pool.map(function, items):
            pass


def put_tree(prefix: str, directory: str | os.PathLike) -> int:
    """Upload every regular file under `directory` to `prefix/<relative path>`; returns how many."""
    storage = blob_storage()
    prefix, directory = key_of(prefix), Path(directory)
    files = _local_files(directory)
    if is_local(storage) and Path(storage.path(prefix)).resolve() == directory.resolve():
        return len(files)  # the embedded default: written in place
    _parallel(lambda path: put_file(f"{prefix}/{path.relative_to(directory).as_posix()}", path), files)
    return len(files)


def fetch_tree(prefix: str, directory: str | os.PathLike) -> int:
    """Download every object under `prefix` into `directory`; returns how many."""
    storage = blob_storage()
    prefix, directory = key_of(prefix), Path(directory)
    names = tree_names(prefix)

    def fetch(name: str) -> None:
        target = directory / key_of(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        _download(storage, f"{prefix}/{name}", target)

    directory.mkdir(parents=True, exist_ok=True)
    _parallel(fetch, names)
    return len(names)


def delete_tree(prefix: str) -> None:
    storage = blob_storage()
    prefix = key_of(prefix)
    if is_local(storage):
        shutil.rmtree(storage.path(prefix), ignore_errors=True)
        return
    _parallel(lambda name: _delete(f"{prefix}/{name}"), tree_names(prefix))


def _delete(key: str) -> None:
    with _named_faults(f"delete {key}"):
        blob_storage().delete(key)


@contextlib.contextmanager
def fetched_tree(prefix: str, *, label: str = "fetch") -> Iterator[Path]:
    """The tree under `prefix` as a local directory for the block (read it, don't write it).

    Local storage: the directory itself. Remote: a scratch copy, removed when the block ends."""
    if is_local():
        yield local_path(prefix)
        return
    with scratch(label) as directory:
        fetch_tree(prefix, directory)
        yield directory


@contextlib.contextmanager
def writing_tree(prefix: str, *, label: str = "write") -> Iterator[Path]:
    """A local directory whose files are stored under `prefix` when the block ends without error.

    Local storage: the key's own directory, written in place. Remote: a scratch directory,
    uploaded, then removed (also when the block fails: nothing half-written is uploaded)."""
    if is_local():
        directory = local_path(prefix)
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    with scratch(label) as directory:
        yield directory
        put_tree(prefix, directory)


@contextlib.contextmanager
def fetched_file(field_file, *, label: str = "probe") -> Iterator[Path]:
    """A stored FileField's file as a local path for the block (a scratch copy when remote)."""
    storage = field_file.storage
    if is_local(storage):
        yield Path(storage.path(field_file.name))
        return
    with scratch(label) as directory:
        target = directory / PurePosixPath(field_file.name).name
        _download(storage, field_file.name, target)
        yield target
