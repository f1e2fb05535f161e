"""The attack suite: hostile probes through `run_probe` on every backend (bwrap and docker).

Each probe that only *tries* something reports every attempt, raises SystemExit("LEAK …") if
one got through, and otherwise writes a small valid image set — so `ok` means "contained",
and the output shows each refusal. Probes that exhaust a limit must end with that limit's
status and message. After a run nothing of it may remain (processes, containers, cgroups, run
dirs), also when the supervising process is stopped or gets SIGTERM mid-run. Each attack is
tested here once per backend; tests of bwrap's own layers are in test_bwrap_backend.py.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sandbox.backends.bwrap import BubblewrapBackend
from sandbox.backends.cgroups import CGROUP_ROOT
from sandbox.backends.standby import STANDBYS
from sandbox.limits import Limits, MiB
from sandbox.policy import ENGINE_WALL_MARGIN_S
from sandbox.runner import run_probe
from tests.sandbox.conftest import bwrap_cgroups_left

ROOT = Path(__file__).resolve().parents[2]
SMALL = Limits(wall_s=15, cpu_s=10, memory_bytes=256 * MiB, pids=64, output_bytes=16 * MiB, output_files=200,
               tmp_bytes=16 * MiB, shm_bytes=8 * MiB, log_bytes=64 * 1024)
# How long past its wall clock a run may take to be ended and reported, on a loaded 2-core host.
END_MARGIN_S = ENGINE_WALL_MARGIN_S + 10

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandboxes are run by a root worker here")

# Prepended to every probe: `valid_set()` writes a two-image set with probekit's writer.
PRELUDE = '''
import os, sys
from PIL import Image
from probekit import ImageSetWriter

def valid_set():
    with ImageSetWriter(groups=["light", "dark"], title="attack suite") as out:
        for name, shade in (("light", 220), ("dark", 40)):
            out.add(Image.new("RGB", (64, 48), (shade,) * 3), id=f"f1-{name}", base="f1",
                    regions=[(name, (8, 8, 32, 32))])
'''


def _processes_matching(text: str) -> list[int]:
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


def _make_backend(name: str, request, **kwargs):
    if name == "bwrap":
        return BubblewrapBackend(**kwargs)
    from sandbox.backends.docker import DockerBackend

    engine = request.getfixturevalue("docker_engine")
    return DockerBackend(base_url=engine.base_url, **kwargs)


@pytest.fixture(params=["bwrap", "docker"])
def backend(request):
    return _make_backend(request.param, request)


def _leftovers(backend, run_id: str, slot: str | None = None) -> list[str]:
    """What is left of a run on the host: its run directory, cgroups (of its slot, if known) or containers."""
    left = [str(backend.runs_dir / run_id)] if (backend.runs_dir / run_id).exists() else []
    if backend.name == "bwrap":
        left += [str(d) for d in bwrap_cgroups_left(backend.cgroup_prefix, run_id, slot)]
    else:
        client = backend._connect()
        left += [c.name for c in client.containers.list(all=True, filters={"label": f"cropbias.run={run_id}"})]
    return left


@pytest.fixture
def run(backend, tmp_path):
    """Run a probe's source through run_probe on `backend`; check nothing of the run is left."""
    def _run(source: str, *, limits: Limits = SMALL, prelude: bool = True):
        probe = tmp_path / f"probe-{secrets.token_hex(3)}.py"
        probe.write_text((PRELUDE if prelude else "") + textwrap.dedent(source))
        run_id = f"attack-{secrets.token_hex(6)}"
        result = run_probe(probe, backend=backend, limits=limits, out_dir=tmp_path / f"set-{run_id}", run_id=run_id)
        assert result.status != "platform_error", result.error
        assert _leftovers(backend, run_id, result.details.get("cgroup")) == []
        if backend.name == "docker":
            assert result.details["image_digest"].startswith("sha256:")
        return result

    return _run


def _contained(result) -> None:
    assert "LEAK" not in result.stdout_tail + result.stderr_tail + (result.error or "")
    assert result.status == "ok", (result.error, result.stdout_tail[-2000:], result.stderr_tail[-2000:])
    assert result.n_images == 2


# -- escaping the sandbox ---------------------------------------------------------------------

def test_probe_cannot_reach_the_network_or_host_sockets(run):
    sockets = ["/var/run/postgresql/.s.PGSQL.5432", "/run/redis/redis-server.sock"]
    docker_host = os.environ.get("DOCKER_HOST", "")
    if docker_host.startswith("unix://"):
        sockets.append(docker_host[len("unix://"):])
    result = run("""
        import socket
        leaks = []
        def attempt(name, call):
            try:
                call()
                leaks.append(name)
                print(name, "CONNECTED")
            except OSError as exc:
                print(name, "refused:", exc.strerror or exc)
        def tcp(host, port):
            def call():
                with socket.create_connection((host, port), timeout=3):
                    pass
            return call
        def udp():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(3)
                s.sendto(b"\\0" * 12, ("8.8.8.8", 53))
                s.recvfrom(512)
        def unix(path):
            def call():
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(path)
            return call
        attempt("tcp redis", tcp("127.0.0.1", 6379))
        attempt("tcp postgres", tcp("127.0.0.1", 5432))
        attempt("tcp outside", tcp("1.1.1.1", 443))
        attempt("udp dns", udp)
        attempt("dns lookup", lambda: socket.getaddrinfo("pypi.org", 443))
        for path in SOCKETS:
            attempt("unix " + path, unix(path))
        if leaks:
            raise SystemExit("LEAK: " + ", ".join(leaks))
        valid_set()
    """.replace("SOCKETS", repr(sockets)))
    _contained(result)
    assert "tcp redis refused:" in result.stdout_tail
    assert "unix /var/run/postgresql/.s.PGSQL.5432 refused:" in result.stdout_tail


def test_probe_sees_no_host_secret(run, monkeypatch):
    canary = secrets.token_hex(16)
    monkeypatch.setenv("CROPBIAS_SECRET_CANARY", canary)
    result = run("""
        import glob
        leaks = [k for k in os.environ if "CANARY" in k or "SECRET" in k or "DATABASE" in k]
        for path in glob.glob("/proc/*/environ"):
            try:
                if b"CANARY" in open(path, "rb").read():
                    leaks.append(path)
            except OSError as exc:
                print(path, "unreadable:", exc.strerror)
        for path in ("/root", "ROOT/var", "ROOT/config/settings.py", "ROOT/var/secret_key", "/etc/shadow",
                     "/var/lib/containers", "/home"):
            try:
                if os.path.isdir(path):
                    os.listdir(path)
                else:
                    open(path, "rb").read(1)
                leaks.append(path)
            except OSError as exc:
                print(path, "refused:", exc.strerror)
        if leaks:
            raise SystemExit("LEAK: " + ", ".join(leaks))
        valid_set()
    """.replace("ROOT", str(ROOT)))
    _contained(result)
    assert canary not in result.stdout_tail + result.stderr_tail
    assert f"{ROOT}/var/secret_key refused:" in result.stdout_tail


def test_probe_cannot_write_outside_its_output_directory(run):
    result = run("""
        import json, probekit
        stdlib = os.path.dirname(json.__file__)
        targets = ["/usr/evil", stdlib + "/evil.py", stdlib + "/__init__.py", os.path.dirname(probekit.__file__) + "/evil.py",
                   probekit.__file__, "/probe/evil", "/probe/probe.py", "/etc/passwd", "/evil", sys.executable,
                   "/var/tmp/evil", "/run/evil"]
        leaks = []
        for path in targets:
            try:
                with open(path, "a") as fh:
                    fh.write("x")
                leaks.append(path)
            except OSError as exc:
                print(path, "refused:", exc.strerror)
        open("/tmp/scratch", "w").write("tmp is writable")
        if leaks:
            raise SystemExit("LEAK: " + ", ".join(leaks))
        valid_set()
    """)
    _contained(result)
    assert "/usr/evil refused:" in result.stdout_tail
    assert "/probe/probe.py refused:" in result.stdout_tail


def test_probe_cannot_see_or_trace_host_processes(run):
    result = run("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        leaks = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
                except OSError:
                    continue
                if any(host in cmdline for host in (b"pytest", b"system\\0service", b"redis-server", b"postgres")):
                    leaks.append(f"sees {cmdline[:60]!r}")
        rc = libc.ptrace(16, WORKER_PID, None, None)  # PTRACE_ATTACH to the worker's host pid
        print("ptrace attach", "ok" if rc == 0 else f"refused: errno {ctypes.get_errno()}")
        if rc == 0:
            leaks.append("ptrace attach")
        if leaks:
            raise SystemExit("LEAK: " + ", ".join(leaks))
        valid_set()
    """.replace("WORKER_PID", str(os.getpid())))
    _contained(result)
    assert "ptrace attach refused" in result.stdout_tail


def test_probe_cannot_gain_privileges_unshare_or_mount(run):
    result = run("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        status = open("/proc/self/status").read()
        print([line for line in status.splitlines() if line.startswith(("Uid:", "CapEff", "NoNewPrivs"))])
        results = {}
        for name, call in {
            "setuid": lambda: libc.setuid(0),
            "unshare_user": lambda: libc.unshare(0x10000000),
            "unshare_mount": lambda: libc.unshare(0x00020000),
            "mount": lambda: libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None),
            "remount_usr": lambda: libc.mount(None, b"/usr", None, 0x20 | 0x1000, None),
            "chroot": lambda: libc.chroot(b"/tmp"),
        }.items():
            results[name] = "ok" if call() == 0 else ctypes.get_errno()
        print("results", results)
        leaks = [name for name, value in results.items() if value == "ok"]
        if os.getuid() == 0 or os.geteuid() == 0:
            leaks.append("root")
        if leaks:
            raise SystemExit("LEAK: " + ", ".join(leaks))
        valid_set()
    """)
    _contained(result)
    assert "'CapEff:\\t0000000000000000'" in result.stdout_tail
    assert "'NoNewPrivs:\\t1'" in result.stdout_tail


def test_probe_killing_its_parent_and_every_process_it_can_harms_only_itself(run):
    result = run("""
        import signal
        for target in (os.getppid(), 1):
            try:
                os.kill(target, signal.SIGKILL)
                print("sent SIGKILL to", target)
            except OSError as exc:
                print("kill", target, "refused:", exc.strerror)
        try:
            os.kill(-1, signal.SIGKILL)  # every process this uid may signal, except itself
        except OSError as exc:
            print("kill -1 refused:", exc.strerror)
        valid_set()
        print("still here")
    """)
    _contained(result)
    assert "still here" in result.stdout_tail
    assert os.getppid() > 1  # the worker (this test) and its parent are alive


# -- exhausting limits ------------------------------------------------------------------------

def test_fork_bomb_hits_the_process_limit_and_leaves_no_process(run):
    marker = "cb" + secrets.token_hex(5)
    result = run(f"""
        import ctypes, os
        ctypes.CDLL(None).prctl(15, b"{marker}", 0, 0, 0)  # PR_SET_NAME, inherited by every fork
        while True:
            os.fork()
    """, limits=Limits(**{**SMALL.to_dict(), "wall_s": 20}), prelude=False)
    assert result.status == "limit_exceeded"
    # 64 copies of an interpreter may fill 256 MiB before the 64th fork: either limit is right.
    assert result.error in ("process limit of 64 reached", "memory limit of 256 MiB reached")
    assert _processes_matching(marker) == []


def test_memory_bomb_hits_the_memory_limit(run):
    result = run("""
        chunks = []
        while True:
            chunks.append(b"x" * (16 * 1024 * 1024))
    """)
    assert (result.status, result.error) == ("limit_exceeded", "memory limit of 256 MiB reached")


def test_cpu_loop_times_out_on_cpu_time(run):
    result = run("while True:\n    pass\n", limits=Limits(**{**SMALL.to_dict(), "cpu_s": 2, "wall_s": 30}),
                 prelude=False)
    assert (result.status, result.error) == ("timeout", "CPU-time limit of 2 s reached")


def test_sleeping_forever_times_out_on_the_wall_clock(run):
    result = run("import time\nprint('sleeping', flush=True)\ntime.sleep(3600)\n",
                 limits=Limits(**{**SMALL.to_dict(), "wall_s": 3}), prelude=False)
    assert (result.status, result.error) == ("timeout", "wall-clock limit of 3 s reached")
    assert result.stdout_tail == "sleeping\n"
    assert result.exit_code is None
    assert result.wall_s < 3 + END_MARGIN_S


def test_exiting_with_status_3_is_an_error_with_its_exit_code(run):
    result = run("print('bye')\nsys.exit(3)\n")
    assert (result.status, result.exit_code, result.error) == ("error", 3, "the probe exited with status 3")
    assert result.stdout_tail == "bye\n"


def test_filling_the_output_directory_hits_the_output_size_limit(run):
    result = run("""
        with open("big.bin", "wb") as fh:
            while True:
                fh.write(b"x" * (1024 * 1024))
    """, prelude=False)
    assert (result.status, result.error) == ("limit_exceeded", "output size limit of 16 MiB reached")


def test_filling_tmp_hits_the_disk_limit(run):
    result = run("""
        with open("/tmp/big.bin", "wb") as fh:
            while True:
                fh.write(b"x" * (1024 * 1024))
    """, prelude=False)
    assert result.status == "limit_exceeded"
    assert result.error.startswith("disk limit reached") or result.error.startswith("output size limit")


def test_writing_past_the_shm_cap_fails_and_shm_is_private(run):
    result = run("""
        written = 0
        try:
            with open("/dev/shm/fill", "wb") as fh:
                while True:
                    fh.write(b"x" * (1024 * 1024))
                    fh.flush()
                    written += 1
        except OSError as exc:
            print("shm full after", written, "MiB:", exc.strerror)
        os.remove("/dev/shm/fill")
        print("shm mount", [line.split()[2:4] for line in open("/proc/self/mounts") if " /dev/shm " in line])
        if written > 8:
            raise SystemExit(f"LEAK: {written} MiB written to /dev/shm past its 8 MiB cap")
        valid_set()
    """)
    _contained(result)
    assert "shm full after" in result.stdout_tail and "No space left on device" in result.stdout_tail
    assert "'tmpfs'" in result.stdout_tail  # its own tmpfs, not the host's /dev/shm


def test_many_small_files_hit_the_file_count_limit(run):
    result = run("""
        for i in range(5000):
            with open(f"f{i}.txt", "w") as fh:
                fh.write("x")
    """, prelude=False)
    assert (result.status, result.error) == ("limit_exceeded", "output file-count limit of 200 reached")


def test_stdout_flood_keeps_only_the_tail(run):
    result = run("""
        for i in range(16 * 1024):
            sys.stdout.write(f"{i:063d}\\n")
        sys.stdout.write("THE END\\n")
        valid_set()
    """)
    assert result.status == "ok", result.stderr_tail
    assert len(result.stdout_tail.encode()) == SMALL.log_bytes
    assert result.stdout_tail.endswith("THE END\n")
    assert f"{0:063d}\n" not in result.stdout_tail


def test_log_flood_beyond_the_log_limit_is_killed(run):
    result = run("""
        line = "y" * 1023 + "\\n"
        while True:
            sys.stderr.write(line)
    """)
    assert result.status == "limit_exceeded"
    assert result.error.startswith("log size limit reached")
    assert len(result.stderr_tail.encode()) <= SMALL.log_bytes


def test_background_process_does_not_outlive_the_run(run):
    marker = f"cbbg{secrets.token_hex(5)}"
    result = run(f"""
        import subprocess
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.fork() == 0:  # a grandchild, orphaned at once
            os.setsid()
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])
        valid_set()
        print("detached")
    """)
    assert result.status == "ok", result.stderr_tail
    assert _processes_matching(marker) == []


def test_cancelling_a_run_kills_every_process_of_it(backend, tmp_path):
    marker = f"cbcancel{secrets.token_hex(5)}"
    probe = tmp_path / "sleepy.py"
    probe.write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])
        print("sleeping", flush=True)
        time.sleep(600)
    """))
    started = time.monotonic()
    run_id = f"cancel-{secrets.token_hex(6)}"
    result = run_probe(probe, backend=backend, limits=SMALL, out_dir=tmp_path / "out", run_id=run_id,
                       should_cancel=lambda: time.monotonic() - started > 3)
    assert (result.status, result.error) == ("error", "cancelled"), (result.status, result.error)
    assert result.image_set_path is None
    assert _processes_matching(marker) == []
    assert not (backend.runs_dir / run_id).exists()


# -- a run never outlives its limits ----------------------------------------------------------

SUPERVISOR = """
import json, os, signal, sys
from pathlib import Path
from sandbox.limits import Limits
from sandbox.runner import run_probe
name, base_url, probe, out, run_id, limits = sys.argv[1:]
if os.environ.get("PREVIOUS_HANDLER"):  # as Celery's worker has its own
    def previous(signum, frame):
        print("previous handler ran", flush=True)
        raise SystemExit(3)
    signal.signal(signal.SIGTERM, previous)
if name == "bwrap":
    from sandbox.backends.bwrap import BubblewrapBackend as Backend
    backend = Backend()
else:
    from sandbox.backends.docker import DockerBackend as Backend
    backend = Backend(base_url=base_url)
result = run_probe(Path(probe), backend=backend, limits=Limits(**json.loads(limits)), out_dir=Path(out), run_id=run_id)
print(json.dumps(result.to_json()), flush=True)
"""


def _sleeper(tmp_path: Path, marker: str) -> Path:
    probe = tmp_path / "sleeper.py"
    probe.write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])
        print("sleeping", flush=True)
        time.sleep(600)
    """))
    return probe


def _start_sleeping_run(backend, tmp_path: Path, wall_s: float, **env) -> tuple[subprocess.Popen, str, str]:
    """run_probe of a sleeper in a process of its own, as a worker runs it; back once the probe runs."""
    marker, run_id = f"cbsleep{secrets.token_hex(5)}", f"sleeper-{secrets.token_hex(6)}"
    limits = Limits(**{**SMALL.to_dict(), "wall_s": wall_s})
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, backend.name, getattr(backend, "base_url", ""), str(_sleeper(tmp_path, marker)),
         str(tmp_path / "out"), run_id, json.dumps(limits.to_dict())],
        cwd=ROOT, env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not _wait_for(lambda: _processes_matching(marker) or supervisor.poll() is not None, 120) or supervisor.poll():
        supervisor.kill()
        pytest.fail(f"the sleeper did not start: {supervisor.communicate()}")
    return supervisor, marker, run_id


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_run_of_a_stopped_supervisor_is_ended_by_the_engine_at_its_limit(backend, tmp_path):
    supervisor, marker, run_id = _start_sleeping_run(backend, tmp_path, wall_s=3)
    try:
        supervisor.send_signal(signal.SIGSTOP)  # a starved or hung worker: nothing of it runs
        assert _wait_for(lambda: not _processes_matching(marker), 3 + END_MARGIN_S), "the probe outlived its limit"
        supervisor.send_signal(signal.SIGCONT)
        stdout, stderr = supervisor.communicate(timeout=120)
    finally:
        supervisor.kill()
    result = json.loads(stdout.strip().splitlines()[-1])
    assert (result["status"], result["error"]) == ("timeout", "wall-clock limit of 3 s reached"), stderr
    assert _leftovers(backend, run_id) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_the_supervisor_mid_run_leaves_no_sandbox_behind(backend, tmp_path, signum):
    supervisor, marker, run_id = _start_sleeping_run(backend, tmp_path, wall_s=120)
    try:
        assert _leftovers(backend, run_id) != []  # the run is live: this check can see it
        supervisor.send_signal(signum)
        supervisor.wait(timeout=60)
    finally:
        supervisor.kill()
    assert supervisor.returncode != 0  # the signal still ended the process after the clean-up
    assert _processes_matching(marker) == []
    assert _leftovers(backend, run_id) == []


def test_sigterm_ends_the_sandbox_and_then_runs_the_handler_that_was_there_before(backend, tmp_path):
    supervisor, marker, run_id = _start_sleeping_run(backend, tmp_path, wall_s=120, PREVIOUS_HANDLER="1")
    try:
        supervisor.send_signal(signal.SIGTERM)
        stdout, stderr = supervisor.communicate(timeout=60)
    finally:
        supervisor.kill()
    assert (supervisor.returncode, stdout) == (3, "previous handler ran\n"), stderr
    assert _processes_matching(marker) == []
    assert _leftovers(backend, run_id) == []


def test_run_of_a_supervisor_killed_outright_ends_by_its_limit_at_the_latest(backend, tmp_path):
    supervisor, marker, run_id = _start_sleeping_run(backend, tmp_path, wall_s=3)
    supervisor.kill()  # no handler runs: bwrap dies with it, a container at its own bound
    supervisor.wait()
    assert _wait_for(lambda: not _processes_matching(marker), 3 + END_MARGIN_S), "the probe outlived its limit"
    assert run_id in backend.reap(older_than_s=-1)  # what is left for the reaper: files, an exited container
    assert _leftovers(backend, run_id) == []


def test_a_fork_bomb_next_door_does_not_keep_a_run_past_its_limit(backend, tmp_path):
    bomb, sleeper = tmp_path / "bomb.py", tmp_path / "sleep.py"
    bomb.write_text(textwrap.dedent("""
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.001)
    """))
    sleeper.write_text("import time\ntime.sleep(600)\n")
    results = {}

    def one(name: str, probe: Path, limits: Limits) -> None:
        results[name] = run_probe(probe, backend=backend, limits=limits, out_dir=tmp_path / name,
                                  run_id=f"{name}-{secrets.token_hex(6)}")

    light = {**SMALL.to_dict(), "pids": 16, "cpu_s": 8}
    threads = [threading.Thread(target=one, args=("bomb", bomb, Limits(**{**light, "wall_s": 8}))),
               threading.Thread(target=one, args=("sleeper", sleeper, Limits(**{**light, "wall_s": 3})))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert results["bomb"].status in ("limit_exceeded", "timeout"), results["bomb"].error
    assert (results["sleeper"].status, results["sleeper"].error) == ("timeout", "wall-clock limit of 3 s reached")
    assert results["sleeper"].wall_s < 3 + END_MARGIN_S


def test_reaper_of_one_deployment_leaves_another_deployments_sandbox_alone(backend, request, tmp_path):
    ours = _make_backend(backend.name, request, deployment=f"test-a-{secrets.token_hex(3)}")
    theirs = _make_backend(backend.name, request, deployment=f"test-b-{secrets.token_hex(3)}")
    marker = f"cbdeploy{secrets.token_hex(5)}"
    run_id = f"theirs-{secrets.token_hex(6)}"
    results = {}
    thread = threading.Thread(target=lambda: results.update(result=run_probe(
        _sleeper(tmp_path, marker), backend=theirs, limits=Limits(**{**SMALL.to_dict(), "wall_s": 60}),
        out_dir=tmp_path / "out", run_id=run_id)))
    thread.start()
    try:
        assert _wait_for(lambda: _processes_matching(marker), 120)
        assert ours.reap(older_than_s=-1) == []  # every sandbox of ours, whatever its age: none
        assert _processes_matching(marker) and _leftovers(theirs, run_id) != []
        assert theirs.reap(older_than_s=-1) == [run_id]
        assert _wait_for(lambda: not _processes_matching(marker), 30)
    finally:
        theirs.reap(older_than_s=-1)
        thread.join(timeout=120)
    assert _leftovers(theirs, run_id) == []
    STANDBYS.release()  # the next run's standby holds a slot below the deployment's prefix
    for deployment in (ours, theirs):  # the test's own deployments leave no empty parents
        shutil.rmtree(deployment.runs_dir, ignore_errors=True)
        for parent in CGROUP_ROOT.glob(f"*/{getattr(deployment, 'cgroup_prefix', '-')}"):
            parent.rmdir()


# -- hostile output ---------------------------------------------------------------------------

def _write_manifest_source(items: str) -> str:
    return """
        import json
        os.makedirs("images", exist_ok=True)
        Image.new("RGB", (64, 48)).save("images/a.png")
        ITEMS_SETUP
        json.dump({"schema": 1, "groups": ["light", "dark"], "items": ITEMS}, open("manifest.json", "w"))
    """.replace("ITEMS_SETUP", "").replace("ITEMS", items)


def _item(item_id: str, image: str, box=(8, 8, 16, 16)) -> str:
    return f'{{"id": "{item_id}", "image": "{image}", "regions": [{{"group": "light", "box": {list(box)}}}]}}'


def test_symlinked_output_is_rejected_naming_the_item(run):
    result = run("""
        import json
        os.makedirs("images", exist_ok=True)
        Image.new("RGB", (64, 48)).save("images/a.png")
        os.symlink("/etc/passwd", "images/secret.png")
        json.dump({"schema": 1, "groups": ["light", "dark"], "items": [ITEM_A, ITEM_LINK]}, open("manifest.json", "w"))
    """.replace("ITEM_A", _item("a", "images/a.png")).replace("ITEM_LINK", _item("leak", "images/secret.png")))
    assert result.status == "rejected"
    assert "item 'leak'" in result.error and "symbolic link" in result.error


def test_hardlinked_output_is_rejected_naming_the_item(run):
    result = run("""
        import json
        os.makedirs("images", exist_ok=True)
        Image.new("RGB", (64, 48)).save("images/a.png")
        os.link("images/a.png", "images/b.png")
        json.dump({"schema": 1, "groups": ["light", "dark"], "items": [ITEM_B]}, open("manifest.json", "w"))
    """.replace("ITEM_B", _item("b", "images/b.png")))
    assert result.status == "rejected"
    assert "item 'b'" in result.error and "hard link" in result.error


def test_dotdot_output_path_is_rejected_naming_the_item(run):
    result = run("""
        import json
        Image.new("RGB", (64, 48)).save("/tmp/outside.png")
        json.dump({"schema": 1, "groups": ["light", "dark"], "items": [ITEM]}, open("manifest.json", "w"))
    """.replace("ITEM", _item("up", "../../tmp/outside.png")))
    assert result.status == "rejected"
    assert "item 'up'" in result.error and "no '..'" in result.error


def test_forged_manifest_with_a_region_outside_the_image_is_rejected(run):
    result = run("""
        import json
        os.makedirs("images", exist_ok=True)
        Image.new("RGB", (64, 48)).save("images/a.png")
        json.dump({"schema": 1, "groups": ["light", "dark"], "items": [ITEM]}, open("manifest.json", "w"))
    """.replace("ITEM", _item("wide", "images/a.png", box=(40, 8, 500, 16))))
    assert result.status == "rejected"
    assert "item 'wide'" in result.error and "lie inside the 64×48 image" in result.error


def test_decompression_bomb_png_is_rejected(run):
    result = run("""
        import json, struct, zlib
        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        side = 12000  # 144 megapixels of 1-bit grey: a few kB compressed
        packer, row = zlib.compressobj(9), b"\\0" + b"\\0" * (side // 8)
        body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
        os.makedirs("images", exist_ok=True)
        with open("images/bomb.png", "wb") as fh:
            fh.write(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
        print("bomb bytes", os.path.getsize("images/bomb.png"))
        json.dump({"schema": 1, "groups": ["light", "dark"], "items": [ITEM]}, open("manifest.json", "w"))
    """.replace("ITEM", _item("bomb", "images/bomb.png")))
    assert result.status == "rejected"
    assert "item 'bomb'" in result.error and "decompression bomb" in result.error


# -- and the worker goes on -------------------------------------------------------------------

def test_benign_probe_is_ok_after_hostile_ones_on_the_same_backend(run):
    run("while True:\n    os.fork()\n", limits=Limits(**{**SMALL.to_dict(), "wall_s": 10}))
    run("chunks = []\nwhile True:\n    chunks.append(b'x' * 2**24)\n")
    result = run("valid_set()\nprint('fine')\n")
    assert result.status == "ok", result.stderr_tail
    assert result.stdout_tail == "fine\n"
    assert result.n_images == 2 and result.image_set_path is not None
    assert sorted(p.name for p in (result.image_set_path / "images").iterdir()) == ["f1-dark.png", "f1-light.png"]


# -- the docker backend's own contract --------------------------------------------------------

def test_unreachable_engine_is_a_platform_error_and_nothing_runs(tmp_path):
    from sandbox.backends.docker import DockerBackend

    probe = tmp_path / "probe.py"
    probe.write_text("open('/var/tmp/ran-unsandboxed', 'w')\n")
    backend = DockerBackend(base_url=f"unix://{tmp_path}/no-engine.sock", runs_dir=tmp_path / "runs")
    usable, reason = backend.available()
    assert not usable and "is unreachable" in reason
    result = run_probe(probe, backend=backend, limits=SMALL, out_dir=tmp_path / "set")
    assert result.status == "platform_error"
    assert result.error.startswith(f"the container engine at unix://{tmp_path}/no-engine.sock is unreachable")
    assert not Path("/var/tmp/ran-unsandboxed").exists()


def test_missing_configured_image_is_a_platform_error(docker_engine, tmp_path):
    from sandbox.backends.docker import DockerBackend

    (tmp_path / "probe.py").write_text("pass\n")
    backend = DockerBackend(base_url=docker_engine.base_url, image="localhost/cropbias-no-such-image:0")
    result = run_probe(tmp_path / "probe.py", backend=backend, limits=SMALL, out_dir=tmp_path / "set")
    assert result.status == "platform_error"
    assert "the probe image localhost/cropbias-no-such-image:0 is missing" in result.error


def test_reap_removes_run_containers_older_than_the_threshold(docker_engine, tmp_path):
    from sandbox.backends.docker import LABEL_DEPLOYMENT, LABEL_RUN, LABEL_STARTED_AT, DockerBackend

    backend = DockerBackend(base_url=docker_engine.base_url, runs_dir=tmp_path / "runs")
    client = backend._client()
    old, young = f"reap-old-{secrets.token_hex(4)}", f"reap-young-{secrets.token_hex(4)}"
    created = {}
    for run_id, started in ((old, time.time() - 7200), (young, time.time())):
        labels = {LABEL_RUN: run_id, LABEL_STARTED_AT: repr(started), LABEL_DEPLOYMENT: backend.deployment}
        created[run_id] = client.containers.create(docker_engine.image_id, command=["/usr/bin/sleep", "600"],
                                                   labels=labels, network_mode="none")
    try:
        created[old].start()
        assert old in backend.reap(older_than_s=3600)
        remaining = {c.labels[LABEL_RUN] for c in client.containers.list(all=True, filters={"label": LABEL_RUN})}
        assert old not in remaining and young in remaining
    finally:
        for container in created.values():
            backend._remove_container(container)
