"""The bubblewrap backend's own layers (cgroups, seccomp, set-up failures, reaping), on the real sandbox.

Attacks every backend must contain are in test_attacks.py, once per backend.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sandbox.backends import BACKENDS, get_backend
from sandbox.backends.base import PlatformError
from sandbox.backends.bwrap import BubblewrapBackend
from sandbox.backends.cgroups import CGROUP_ROOT, SLOT_PREFIX
from sandbox.backends.standby import STANDBYS
from sandbox.limits import Limits, MiB
from sandbox.policy import BAD_RUN_ID, STARTED_AT_FILE
from tests.sandbox.conftest import bwrap_cgroups_left

ROOT = Path(__file__).resolve().parents[2]
SMALL = Limits(wall_s=10, cpu_s=5, memory_bytes=512 * MiB, pids=64, output_bytes=8 * MiB,
               output_files=200, tmp_bytes=16 * MiB, log_bytes=64 * 1024)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="these tests check the root worker's layers")


@pytest.fixture
def shared_dir():
    """A directory the sandbox uid may read (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="cropbias-test-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def backend(shared_dir):
    probekit = shared_dir / "probekit"
    probekit.mkdir()
    (probekit / "__init__.py").write_text("MARKER = 'probekit-visible'\n")
    shared_dir.joinpath("probekit").chmod(0o755)
    return BubblewrapBackend(probekit_dir=probekit)


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mounts") as fh:
        return [line.split()[1] for line in fh if line.split()[1].startswith(str(path))]


def _run_cgroups(run_id: str, prefix: str, slot: str | None = None) -> list[Path]:
    return bwrap_cgroups_left(prefix, run_id, slot)


@pytest.fixture
def run(backend, tmp_path):
    """Run a probe's source in the sandbox; cleans up and checks nothing of the run is left."""
    def _run(source: str, *, limits: Limits = SMALL, check_output=None, **kwargs):
        probe_dir = tmp_path / f"probe-{secrets.token_hex(4)}"
        probe_dir.mkdir()
        (probe_dir / "probe.py").write_text(textwrap.dedent(source))
        run_id = f"test-{secrets.token_hex(6)}"
        execution = backend.execute(probe_dir, limits=limits, run_id=run_id, **kwargs)
        try:
            if check_output is not None:
                check_output(execution.output_dir)
        finally:
            execution.cleanup()
        assert _mounts_under(backend.runs_dir / run_id) == []
        assert not (backend.runs_dir / run_id).exists()
        assert _run_cgroups(run_id, backend.cgroup_prefix, execution.details.get("cgroup")) == []
        return execution

    return _run


def test_benign_probe_writes_into_its_working_directory_and_is_ok(run):
    seen = {}

    def check(out: Path):
        seen["files"] = sorted(p.name for p in out.iterdir())
        seen["text"] = (out / "hello.txt").read_text()

    execution = run("""
        import os, numpy, PIL.Image, probekit
        print("cwd", os.getcwd(), os.environ["PROBE_OUTPUT_DIR"], probekit.MARKER)
        with open("hello.txt", "w") as fh:
            fh.write("hi")
    """, check_output=check)
    assert execution.status == "ok", execution.stderr_tail
    assert execution.exit_code == 0 and execution.error is None
    assert "cwd /out /out probekit-visible" in execution.stdout_tail
    assert seen == {"files": ["hello.txt"], "text": "hi"}
    details = execution.details
    assert details["uid"] == 65534 and details["seccomp"] and details["output_tmpfs"]
    assert details["cgroup_v1_memory"] and details["cgroup_v1_pids"] and details["cgroup_v2_kill"]


def test_probe_printing_a_fake_bwrap_message_is_its_own_error_not_a_platform_error(run):
    execution = run("import sys\nprint('bwrap: Can\\'t find source path /x', file=sys.stderr)\nsys.exit(1)\n")
    assert execution.status == "error"
    assert execution.exit_code == 1


def test_sandbox_root_shows_only_the_bound_trees(run, backend):
    # Only the runtime is visible; the checkout around it (settings, var/) is not, wherever it lives.
    venv = backend.python_prefix
    top = venv.parts[1]
    execution = run(f"""
        import os
        print("visible", sorted(os.listdir("/")), sorted(os.listdir("{venv.parent}")))
        print("shm", [line.split()[2] for line in open("/proc/self/mounts") if " /dev/shm " in line])
    """)
    assert execution.status == "ok", execution.stdout_tail + execution.stderr_tail
    expected_top = sorted({"dev", "etc", "opt", "out", "probe", "proc", "tmp", "usr", top}
                          | {name for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
                             if os.path.lexists(f"/{name}")})
    assert f"visible {expected_top} {[venv.name]}" in execution.stdout_tail, execution.stdout_tail
    assert "shm ['tmpfs']" in execution.stdout_tail


def test_concurrent_runs_do_not_disturb_each_other(run):
    results = {}

    def one(name: str) -> None:
        results[name] = run(f"import time\ntime.sleep(0.5)\nprint('{name}')\n")

    threads = [threading.Thread(target=one, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {n: (e.status, e.stdout_tail) for n, e in results.items()} == {
        "first": ("ok", "first\n"), "second": ("ok", "second\n")}


def test_setup_failure_of_the_sandbox_is_a_platform_error(tmp_path):
    # A runtime the sandbox uid cannot reach (/root is private): bwrap fails before the probe.
    hidden = Path(tempfile.mkdtemp(prefix="cropbias-test-", dir="/root"))
    try:
        (hidden / "bin").mkdir()
        (hidden / "bin" / "python").symlink_to("/usr/bin/python3.11")
        (tmp_path / "probe.py").write_text("print('never')\n")
        backend = BubblewrapBackend(python_prefix=hidden)
        with pytest.raises(PlatformError, match="bubblewrap could not start the probe"):
            backend.execute(tmp_path, limits=SMALL, run_id=f"test-{secrets.token_hex(6)}")
        assert list(backend.runs_dir.glob("test-*")) == [] or all(
            not _mounts_under(p) for p in backend.runs_dir.glob("test-*"))
    finally:
        shutil.rmtree(hidden, ignore_errors=True)


def test_missing_bubblewrap_is_reported_and_never_runs_unsandboxed(tmp_path):
    (tmp_path / "probe.py").write_text("open('/var/tmp/ran-unsandboxed', 'w')\n")
    backend = BubblewrapBackend(bwrap_path="/nonexistent/bwrap")
    usable, reason = backend.available()
    assert not usable and "bubblewrap is not installed" in reason
    with pytest.raises(PlatformError, match="bubblewrap is not installed"):
        backend.execute(tmp_path, limits=SMALL, run_id="test-missing-bwrap")
    assert not Path("/var/tmp/ran-unsandboxed").exists()


def test_run_ids_that_could_escape_the_runs_directory_are_refused(backend, tmp_path):
    (tmp_path / "probe.py").write_text("pass\n")
    with pytest.raises(ValueError, match="run_id must be"):
        backend.execute(tmp_path, limits=SMALL, run_id="../etc")
    assert BAD_RUN_ID.startswith("run_id must be")


def test_reap_ends_runs_older_than_the_threshold_and_keeps_younger_ones(shared_dir, tmp_path):
    # Its own runs directory and cgroup prefix: reaping must not touch runs of other tests.
    prefix = f"cropbias-test-{secrets.token_hex(4)}"
    backend = BubblewrapBackend(runs_dir=shared_dir / "runs", cgroup_prefix=prefix)
    (tmp_path / "probe.py").write_text("open('x', 'w').write('x')\n")
    run_id = f"test-{secrets.token_hex(6)}"
    two_hours_ago = time.time() - 7200
    try:
        execution = backend.execute(tmp_path, limits=SMALL, run_id=run_id)
        assert execution.status == "ok"
        # The cgroup of a dead worker's run whose directory is already gone, two hours old.
        orphan = CGROUP_ROOT / "pids" / prefix / "orphan-run"
        orphan.mkdir(parents=True)
        os.utime(orphan, (two_hours_ago, two_hours_ago))
        assert backend.reap(older_than_s=3600) == ["orphan-run"]
        assert not orphan.exists()
        assert _mounts_under(backend.runs_dir / run_id) != []  # the fresh run is left alone
        (backend.runs_dir / run_id / STARTED_AT_FILE).write_text(repr(two_hours_ago))
        assert backend.reap(older_than_s=3600) == [run_id]
        assert _mounts_under(backend.runs_dir / run_id) == []
        assert not (backend.runs_dir / run_id).exists()
        assert _run_cgroups(run_id, prefix) == []
        execution.cleanup()  # idempotent after a reap
    finally:
        STANDBYS.release()
        for parent in CGROUP_ROOT.glob(f"*/{prefix}"):
            parent.rmdir()


def _processes_holding_mounts_of(run_dir: Path) -> list[int]:
    """Processes in another mount namespace with a mount bound from `run_dir` (read-only scan)."""
    own = os.stat("/proc/self/ns/mnt").st_ino
    marker = f"/{run_dir.parent.name}/{run_dir.name}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "ns" / "mnt").stat().st_ino != own and marker in (entry / "mountinfo").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_every_process_of_a_run_is_born_inside_its_cgroups(run):
    # The standby joined the cgroups before it executed bwrap, so bwrap's cgroup namespace is rooted
    # at the run's own cgroups: a process moved in later would see a path outside its root.
    execution = run("print(open('/proc/self/cgroup').read())")
    assert execution.status == "ok", execution.stderr_tail
    lines = [line for line in execution.stdout_tail.splitlines() if line.strip()]
    by_controller = {line.split(":")[1]: line.split(":", 2)[2] for line in lines}
    for controller in ("memory", "pids", "cpuacct", ""):  # "" is the cgroup v2 hierarchy
        assert by_controller[controller] == "/", lines


def test_the_next_runs_standby_waits_in_fresh_cgroups_and_dies_with_its_worker(shared_dir, tmp_path):
    prefix = f"cropbias-test-{secrets.token_hex(4)}"
    runs_dir = shared_dir / "runs"
    (tmp_path / "probe.py").write_text("pass\n")
    # A worker that ran once (so it holds the next run's standby), then waits to be killed.
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from sandbox.backends import bwrap
        from sandbox.backends.standby import STANDBYS
        from sandbox.limits import Limits

        backend = bwrap.BubblewrapBackend(runs_dir=Path({str(runs_dir)!r}), cgroup_prefix={prefix!r})
        backend.execute(Path({str(tmp_path)!r}), limits=Limits(wall_s=60), run_id="first").cleanup()
        assert STANDBYS.wait_ready(30)
        print(*STANDBYS.slots(), flush=True)
        time.sleep(3600)
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT)
    backend = BubblewrapBackend(runs_dir=runs_dir, cgroup_prefix=prefix)
    try:
        slot = worker.stdout.readline().decode().strip()
        assert slot.startswith(SLOT_PREFIX) and slot not in STANDBYS.slots()
        slot_cgroups = [d for d in CGROUP_ROOT.glob(f"*/{prefix}/{slot}") if d.is_dir()]
        assert len(slot_cgroups) == 4  # memory, pids, cpuacct and the cgroup v2 leaf
        for directory in slot_cgroups:  # only the standby's launcher inside
            assert len((directory / "cgroup.procs").read_text().split()) == 1
        assert backend.reap(older_than_s=-1) == []  # a live worker's standby is not an orphan
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 10  # the standby dies with its worker (parent-death signal)
        while any((d / "cgroup.procs").read_text().strip() for d in slot_cgroups) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any((d / "cgroup.procs").read_text().strip() for d in slot_cgroups)
        assert backend.reap(older_than_s=-1) == [slot]  # what is left is an empty slot, for the reaper
        assert bwrap_cgroups_left(prefix, "first") == []
    finally:
        worker.kill()
        backend.reap(older_than_s=-1)
        for parent in CGROUP_ROOT.glob(f"*/{prefix}"):
            parent.rmdir()


def test_backends_are_found_by_name():
    assert BACKENDS == ("bwrap", "docker")
    assert isinstance(get_backend("bwrap"), BubblewrapBackend)
    with pytest.raises(ValueError, match="unknown sandbox backend 'lxc'"):
        get_backend("lxc")


def test_a_runs_root_made_by_another_user_is_refused(tmp_path):
    from sandbox.backends.bwrap import _private_root

    squatted = tmp_path / "cropbias-sandbox"
    squatted.mkdir(mode=0o777)
    os.chown(squatted, 65534, 65534)  # someone else got there first in the world-writable parent
    with pytest.raises(PlatformError, match="not a directory of root's own"):
        _private_root(squatted)
    own = tmp_path / "ours"
    _private_root(own)
    assert (own.stat().st_mode & 0o777, own.stat().st_uid) == (0o711, 0)
