"""The bubblewrap backend against hostile and benign probes, on the real sandbox (no DB)."""
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
from sandbox.backends.bwrap import BAD_RUN_ID, CGROUP_PREFIX, CGROUP_ROOT, STARTED_AT_FILE, BubblewrapBackend
from sandbox.limits import MiB, Limits

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


def _run_cgroups(run_id: str, prefix: str = CGROUP_PREFIX) -> list[Path]:
    return [d for d in CGROUP_ROOT.glob(f"*/{prefix}/{run_id}") if d.exists()]


def _processes_matching(text: str) -> list[int]:
    """Host pids whose command line or name contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            comm = (entry / "comm").read_text()
        except OSError:
            continue
        if text in cmdline or text in comm:
            found.append(int(entry.name))
    return found


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
        assert _run_cgroups(run_id) == []
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


def test_probe_exiting_3_is_an_error_with_its_exit_code(run):
    execution = run("import sys\nprint('bye')\nsys.exit(3)\n")
    assert execution.status == "error"
    assert execution.exit_code == 3
    assert execution.error == "the probe exited with status 3"
    assert execution.stdout_tail == "bye\n"


def test_probe_printing_a_fake_bwrap_message_is_its_own_error_not_a_platform_error(run):
    execution = run("import sys\nprint('bwrap: Can\\'t find source path /x', file=sys.stderr)\nsys.exit(1)\n")
    assert execution.status == "error"
    assert execution.exit_code == 1


def test_probe_cannot_open_any_network_connection(run):
    execution = run("""
        import socket
        refused = []
        attempts = [
            ("tcp redis", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 6379)),
            ("tcp6 loopback", socket.AF_INET6, socket.SOCK_STREAM, ("::1", 6379)),
            ("udp dns", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 53)),
            ("unix", socket.AF_UNIX, socket.SOCK_STREAM, "/run/redis.sock"),
            ("netlink", socket.AF_NETLINK, socket.SOCK_RAW, (0, 0)),
        ]
        for name, family, kind, address in attempts:
            try:
                with socket.socket(family, kind) as s:
                    s.settimeout(2)
                    s.connect(address)
                    print(name, "CONNECTED")
            except OSError as exc:
                print(name, "refused:", exc.strerror)
                refused.append(name)
        interfaces = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
        print("interfaces", interfaces)
        raise SystemExit(0 if len(refused) == len(attempts) and interfaces == ["lo"] else 1)
    """)
    assert execution.status == "ok", execution.stdout_tail + execution.stderr_tail
    assert "tcp redis refused: Operation not permitted" in execution.stdout_tail
    assert "unix refused: Operation not permitted" in execution.stdout_tail
    assert "CONNECTED" not in execution.stdout_tail


def test_probe_sees_no_secret_of_the_host(run, backend, monkeypatch):
    canary = secrets.token_hex(16)
    monkeypatch.setenv("CROPBIAS_SECRET_CANARY", canary)
    # Only the runtime is visible; the checkout around it (settings, var/) is not, wherever it lives.
    venv = backend.python_prefix
    top = venv.parts[1]
    execution = run(f"""
        import os, glob
        leaks = [k for k in os.environ if "CANARY" in k]
        for path in glob.glob("/proc/*/environ"):
            try:
                if b"CROPBIAS_SECRET_CANARY" in open(path, "rb").read():
                    leaks.append(path)
            except OSError:
                pass
        for path in ("/root", "{ROOT / 'var'}", "{ROOT / 'config'}", "/etc/shadow", "/home", "/var"):
            if os.path.exists(path):
                leaks.append(path)
        print("pid1", open("/proc/1/cmdline", "rb").read()[:20])
        print("visible", sorted(os.listdir("/")), sorted(os.listdir("{venv.parent}")))
        print("leaks", leaks)
        raise SystemExit(1 if leaks else 0)
    """)
    assert execution.status == "ok", execution.stdout_tail + execution.stderr_tail
    assert "leaks []" in execution.stdout_tail
    assert canary not in execution.stdout_tail + execution.stderr_tail
    expected_top = sorted({"dev", "etc", "opt", "out", "probe", "proc", "tmp", "usr", top}
                          | {name for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
                             if os.path.lexists(f"/{name}")})
    assert f"visible {expected_top} {[venv.name]}" in execution.stdout_tail, execution.stdout_tail


def test_probe_cannot_write_outside_out_and_tmp(run, backend):
    venv = str(backend.python_prefix)
    execution = run(f"""
        import os
        written = []
        for path in ("/usr/evil", "{venv}/evil", "{venv}/bin/python", "/opt/probekit/evil", "/probe/evil",
                     "/probe/probe.py", "/etc/passwd", "/evil"):
            try:
                with open(path, "a") as fh:
                    fh.write("x")
                written.append(path)
            except OSError as exc:
                print(path, "refused:", exc.strerror)
        with open("/tmp/scratch", "w") as fh:
            fh.write("tmp is writable")
        print("written", written)
        raise SystemExit(1 if written else 0)
    """)
    assert execution.status == "ok", execution.stdout_tail + execution.stderr_tail
    assert "/usr/evil refused: Read-only file system" in execution.stdout_tail
    assert "/evil refused: Read-only file system" in execution.stdout_tail
    assert "/probe/probe.py refused:" in execution.stdout_tail


def test_probe_runs_unprivileged_and_privileged_calls_fail(run):
    execution = run("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        status = open("/proc/self/status").read()
        print("uid", os.getuid(), os.geteuid())
        print([line for line in status.splitlines() if line.startswith(("CapEff", "NoNewPrivs", "Seccomp:"))])
        results = {}
        try:
            os.setuid(0)
            results["setuid"] = "ok"
        except OSError as exc:
            results["setuid"] = exc.errno
        for name, call in {
            "ptrace": lambda: libc.ptrace(0, 0, None, None),                  # PTRACE_TRACEME
            "unshare_user": lambda: libc.unshare(0x10000000),                  # CLONE_NEWUSER
            "unshare_net": lambda: libc.unshare(0x40000000),                   # CLONE_NEWNET
            "mount": lambda: libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None),
            "remount_usr": lambda: libc.mount(None, b"/usr", None, 0x20 | 0x1000, None),  # MS_REMOUNT|MS_BIND
            "chroot": lambda: libc.chroot(b"/tmp"),
            "bpf": lambda: libc.syscall(321, 0, None, 0),
        }.items():
            rc = call()
            results[name] = "ok" if rc == 0 else ctypes.get_errno()
        print("results", results)
        raise SystemExit(0 if os.getuid() != 0 and all(v != "ok" for v in results.values()) else 1)
    """)
    assert execution.status == "ok", execution.stdout_tail + execution.stderr_tail
    assert "uid 65534 65534" in execution.stdout_tail
    assert "'CapEff:\\t0000000000000000'" in execution.stdout_tail
    assert "'NoNewPrivs:\\t1'" in execution.stdout_tail
    assert "'ptrace': 1" in execution.stdout_tail  # EPERM from the seccomp filter


def test_probe_sleeping_forever_times_out_on_the_wall_clock(run):
    execution = run("import time\nprint('sleeping', flush=True)\ntime.sleep(3600)\n",
                    limits=Limits(**{**SMALL.to_dict(), "wall_s": 2}))
    assert execution.status == "timeout"
    assert execution.error == "wall-clock limit of 2 s reached"
    assert execution.stdout_tail == "sleeping\n"


def test_probe_spinning_the_cpu_times_out_on_cpu_time(run):
    execution = run("while True:\n    pass\n", limits=Limits(**{**SMALL.to_dict(), "cpu_s": 1, "wall_s": 60}))
    assert execution.status == "timeout"
    assert execution.error == "CPU-time limit of 1 s reached"


def test_fork_bomb_hits_the_process_limit_and_leaves_no_process(run):
    marker = "cb" + secrets.token_hex(5)
    execution = run(f"""
        import ctypes, os
        ctypes.CDLL(None).prctl(15, b"{marker}", 0, 0, 0)  # PR_SET_NAME, inherited by every fork
        while True:
            os.fork()
    """, limits=Limits(**{**SMALL.to_dict(), "pids": 64, "memory_bytes": 256 * MiB, "wall_s": 20}))
    assert execution.status in ("limit_exceeded", "timeout")
    if execution.status == "limit_exceeded":
        assert execution.error == "process limit of 64 reached"
    assert _processes_matching(marker) == []


def test_memory_bomb_hits_the_memory_limit(run):
    execution = run("""
        chunks = []
        while True:
            chunks.append(b"x" * (16 * 1024 * 1024))
    """, limits=Limits(**{**SMALL.to_dict(), "memory_bytes": 256 * MiB}))
    assert execution.status == "limit_exceeded"
    assert execution.error == "memory limit of 256 MiB reached"


def test_filling_the_output_directory_hits_the_output_size_limit(run):
    execution = run("""
        with open("big.bin", "wb") as fh:
            while True:
                fh.write(b"x" * (1024 * 1024))
    """)
    assert execution.status == "limit_exceeded"
    assert execution.error == "output size limit of 8 MiB reached"


def test_too_many_output_files_hit_the_file_count_limit(run):
    execution = run("""
        for i in range(5000):
            with open(f"f{i}.txt", "w") as fh:
                fh.write("x")
    """)
    assert execution.status == "limit_exceeded"
    assert execution.error == "output file-count limit of 200 reached"


def test_stdout_flood_keeps_only_the_last_log_bytes(run):
    execution = run("""
        import sys
        for i in range(16 * 1024):
            sys.stdout.write(f"{i:063d}\\n")
        sys.stdout.write("THE END\\n")
    """)
    assert execution.status == "ok", execution.stderr_tail
    assert len(execution.stdout_tail.encode()) == SMALL.log_bytes
    assert execution.stdout_tail.endswith("THE END\n")
    assert f"{16 * 1024 - 1:063d}\n" in execution.stdout_tail
    assert f"{0:063d}\n" not in execution.stdout_tail


def test_log_flood_beyond_the_log_size_limit_is_killed(run):
    execution = run("""
        import sys
        line = "y" * 1023 + "\\n"
        while True:
            sys.stderr.write(line)
    """)
    assert execution.status == "limit_exceeded"
    assert execution.error.startswith("log size limit reached")
    assert len(execution.stderr_tail.encode()) <= SMALL.log_bytes


def test_background_process_does_not_outlive_the_run(run):
    marker = f"600.{secrets.randbelow(10**9)}"
    execution = run(f"""
        import subprocess
        subprocess.Popen(["sleep", "{marker}"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("detached")
    """)
    assert execution.status == "ok", execution.stderr_tail
    assert _processes_matching(f"sleep {marker}") == []


def test_cancelling_a_run_kills_it_and_reports_cancelled(run):
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) >= 2

    execution = run("import time\ntime.sleep(3600)\n", should_cancel=should_cancel)
    assert execution.status == "error"
    assert execution.error == "cancelled"


def test_sandbox_still_runs_a_benign_probe_after_hostile_ones(run):
    run("import os\nwhile True:\n    os.fork()\n", limits=Limits(**{**SMALL.to_dict(), "wall_s": 5}))
    run("chunks = []\nwhile True:\n    chunks.append(b'x' * 2**24)\n",
        limits=Limits(**{**SMALL.to_dict(), "memory_bytes": 256 * MiB}))
    execution = run("open('ok.txt', 'w').write('fine')\nprint('fine')\n")
    assert execution.status == "ok"
    assert execution.stdout_tail == "fine\n"


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


def test_sandbox_of_a_worker_that_died_before_releasing_it_never_runs_and_is_reaped(shared_dir, tmp_path):
    prefix = f"cropbias-test-{secrets.token_hex(4)}"
    runs_dir = shared_dir / "runs"
    run_id = f"test-{secrets.token_hex(6)}"
    (tmp_path / "probe.py").write_text("open('ran', 'w').write('the probe ran')\n")
    # A worker that stops right after starting bwrap, before moving it into its cgroups.
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from sandbox.backends import bwrap
        from sandbox.limits import Limits

        def stuck(self, proc, status_r, cgroups):
            print(proc.pid, flush=True)
            time.sleep(3600)

        bwrap.BubblewrapBackend._enter_cgroups = stuck
        backend = bwrap.BubblewrapBackend(runs_dir=Path({str(runs_dir)!r}), cgroup_prefix={prefix!r})
        backend.execute(Path({str(tmp_path)!r}), limits=Limits(wall_s=60), run_id={run_id!r})
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT)
    backend = BubblewrapBackend(runs_dir=runs_dir, cgroup_prefix=prefix)
    try:
        assert int(worker.stdout.readline()) > 0
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 30
        while not _processes_holding_mounts_of(runs_dir / run_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_holding_mounts_of(runs_dir / run_id), "the abandoned sandbox should be waiting"
        time.sleep(1.0)  # the abandoned sandbox must stay blocked, not run the probe
        assert not (runs_dir / run_id / "out" / "ran").exists()
        (runs_dir / run_id / STARTED_AT_FILE).write_text(repr(time.time() - 7200))
        assert backend.reap(older_than_s=3600) == [run_id]
        deadline = time.monotonic() + 10
        while _processes_holding_mounts_of(runs_dir / run_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_holding_mounts_of(runs_dir / run_id) == []
        assert _mounts_under(runs_dir / run_id) == [] and not (runs_dir / run_id).exists()
        assert _run_cgroups(run_id, prefix) == []
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
