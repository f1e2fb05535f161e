"""A real Docker-API engine for the sandbox tests: Podman's service on a private socket.

`docker_engine` (session) does what `make engine` does — scripts/engine.sh with ENGINE_DIR set
to a temp dir — points DOCKER_HOST at it, builds/imports the probe image once (cached by
content hash, so later sessions only check it), and stops the service afterwards. When Podman
cannot be installed or started the tests fail with the reason: a docker backend that was
never exercised must not look green.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CGROUP_ROOT = Path("/sys/fs/cgroup")


# Slots on the host when the test began: left empty by workers killed earlier (the reaper removes
# them once they are old), so not this test's.
_SLOTS_BEFORE: set[str] = set()


def _slots_now() -> set[str]:
    from sandbox.backends.cgroups import CGROUP_PREFIX, SLOT_PREFIX

    return {d.name for d in CGROUP_ROOT.glob(f"*/{CGROUP_PREFIX}/*/{SLOT_PREFIX}*")}


@pytest.fixture(autouse=True)
def _slots_before_the_test():
    _SLOTS_BEFORE.clear()
    _SLOTS_BEFORE.update(_slots_now())
    yield


def bwrap_cgroups_left(prefix: str, run_id: str, slot: str | None = None) -> list[Path]:
    """A bwrap run's cgroups still on the host: named after it, its slot (`details["cgroup"]`), or
    when the slot is not known any slot below `prefix` that is neither this process's standby nor
    there before the test began."""
    from sandbox.backends.cgroups import SLOT_PREFIX
    from sandbox.backends.standby import STANDBYS

    held = STANDBYS.slots() | _SLOTS_BEFORE
    return [d for d in CGROUP_ROOT.glob(f"*/{prefix}/*") if d.is_dir() and (
        d.name in (run_id, slot) or (slot is None and d.name.startswith(SLOT_PREFIX) and d.name not in held))]
# runc because crun fails in this cgroup layout (run containers need no init: timeout is their PID 1).
ENGINE_PACKAGES = ("podman", "runc", "uidmap")


@dataclass(frozen=True)
class DockerEngine:
    base_url: str
    image_id: str
    directory: Path


def _install_engine() -> None:
    missing = [p for p in ("podman", "runc") if shutil.which(p) is None]
    if not missing:
        return
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install_system.sh"), *ENGINE_PACKAGES],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"could not install {' '.join(ENGINE_PACKAGES)} for the docker backend tests:\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}", pytrace=False)


@pytest.fixture(scope="session")
def docker_engine():
    import docker

    from sandbox.probe_image import ensure_probe_image

    _install_engine()
    directory = Path(tempfile.mkdtemp(prefix="cropbias-engine-"))
    env = dict(os.environ, ENGINE_DIR=str(directory))
    script = ["bash", str(ROOT / "scripts" / "engine.sh")]
    proc = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or "export DOCKER_HOST=" not in proc.stdout:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.fail(f"could not start the Podman service:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    base_url = proc.stdout.strip().splitlines()[-1].split("=", 1)[1]
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = base_url
    try:
        client = docker.DockerClient(base_url=base_url, timeout=900)
        image_id = ensure_probe_image(client)
        client.close()
        yield DockerEngine(base_url=base_url, image_id=image_id, directory=directory)
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous
        subprocess.run([*script, "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(directory, ignore_errors=True)
