"""compose.yaml, validated without a container engine: services, env names, commands, images.

No registry is reachable where the suite runs, so the stack is not brought up here. What can be
checked without it is: every service is there; every variable the app's containers set is one
the settings read (so the two cannot drift); every command names a real entry point, module,
management command or file; the image installs what the sandbox needs; Prometheus scrapes the
web service with the token.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"web", "worker", "beat", "flower", "migrate", "redis", "postgres", "s3", "prometheus"}
APP_SERVICES = {"web", "worker", "beat", "flower", "migrate", "s3"}  # built from Dockerfile.app
# Variables an app container may set that programs other than the settings read, and who reads them.
READ_ELSEWHERE = {"FLOWER_BASIC_AUTH": "Flower (every FLOWER_<option> sets that option)"}
INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)[^}]*\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def settings_env_names(source: str) -> set[str]:
    """Every environment variable config/settings.py reads (os.environ, env_bool, env_list)."""
    patterns = (r"os\.environ(?:\.get|\.setdefault)\(\s*\"([A-Z][A-Z0-9_]*)\"",
                r"os\.environ\[\s*\"([A-Z][A-Z0-9_]*)\"\s*\]",
                r"os\.getenv\(\s*\"([A-Z][A-Z0-9_]*)\"",
                r"env_(?:bool|list)\(\s*\"([A-Z][A-Z0-9_]*)\"")
    return {name for pattern in patterns for name in re.findall(pattern, source)}


def _command(service: dict) -> list[str]:
    command = service.get("command")
    return shlex.split(command) if isinstance(command, str) else list(command or [])


def _commands(service: dict) -> list[list[str]]:
    """The command, split at `&&` when it is a `sh -c` chain."""
    command = _command(service)
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def test_every_service_is_there_and_the_app_ones_share_the_image(compose):
    assert set(compose["services"]) == SERVICES
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "Dockerfile.app" and (ROOT / "Dockerfile.app").is_file(), name
        assert service["image"] == "cropbias-app"
    # Nothing of the platform starts before the schema is migrated.
    for name in APP_SERVICES - {"migrate", "s3"}:
        assert compose["services"][name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_variable_the_app_containers_set_is_read_by_the_settings(compose):
    read = settings_env_names((ROOT / "config" / "settings.py").read_text())
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "METRICS_TOKEN"} <= read  # the parser finds them
    for name in APP_SERVICES:
        unknown = set(compose["services"][name].get("environment") or {}) - read - set(READ_ELSEWHERE)
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"
    env = compose["services"]["web"]["environment"]
    for needed in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "S3_BUCKET", "S3_ENDPOINT_URL", "S3_REGION",
                   "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ALLOWED_HOSTS", "SITE_URL", "METRICS_TOKEN"):
        assert needed in env, needed


def test_the_settings_parser_sees_what_it_should():
    source = 'A = os.environ.get("ONE", 1)\nB = env_bool("TWO")\nC = os.environ["THREE"]\nD = env_list("FOUR", "")\n'
    assert settings_env_names(source) == {"ONE", "TWO", "THREE", "FOUR"}


def test_every_command_names_a_real_entry_point(compose):
    from celery.bin.celery import celery as celery_cli
    from django.core.management import get_commands

    celery_commands = set(celery_cli.commands) | {ep.name for ep in entry_points(group="celery.commands")}
    seen = set()
    for name in APP_SERVICES:
        for command in _commands(compose["services"][name]):
            program, args = command[0], command[1:]
            if program == "celery":
                assert args[:2] == ["-A", "config"] and hasattr(importlib.import_module("config.celery"), "app")
                assert args[2] in celery_commands, f"{name}: no celery command {args[2]!r}"
            elif program == "gunicorn":
                module, _, attribute = args[0].partition(":")
                assert callable(getattr(importlib.import_module(module), attribute)), args[0]
            elif program == "python" and args[0] == "-m":
                assert importlib.util.find_spec(args[1]) is not None, f"{name}: no module {args[1]}"
            elif program == "python" and args[0] == "manage.py":
                assert args[1] in get_commands(), f"{name}: no management command {args[1]!r}"
            elif program == "python":
                assert (ROOT / args[0]).is_file(), f"{name}: no file {args[0]}"
            else:
                pytest.fail(f"{name}: unchecked program {program!r}")
            seen.add((program, args[0] if program != "celery" else args[2]))
    assert {("celery", "worker"), ("celery", "beat"), ("celery", "flower"), ("gunicorn", "config.wsgi:application"),
            ("python", "manage.py"), ("python", "-m")} <= seen


def test_the_worker_may_run_the_bubblewrap_sandbox(compose):
    worker = compose["services"]["worker"]
    assert worker["privileged"] is True and worker["user"] == "root"
    assert worker["environment"]["SANDBOX_BACKEND"] == "bwrap"
    for name in APP_SERVICES - {"worker"}:
        assert not compose["services"][name].get("privileged"), name


def test_the_image_has_debian_python_bubblewrap_the_requirements_and_static_files():
    dockerfile = (ROOT / "Dockerfile.app").read_text()
    assert re.search(r"^FROM debian:\S+", dockerfile, re.M)
    assert "python3.11" in dockerfile and "bubblewrap" in dockerfile
    assert "pip install --no-cache-dir -r /tmp/requirements.txt" in dockerfile
    assert "manage.py collectstatic --noinput" in dockerfile
    for source in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        assert (ROOT / source).exists(), source
    # `COPY . /app` must not carry local state, the venv or the secrets into the image.
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "var", ".git", ".env", "deploy/metrics_token"} <= ignored


def test_every_variable_compose_interpolates_is_in_the_example_env(compose):
    used = set(INTERPOLATION.findall((ROOT / "compose.yaml").read_text()))
    example = {line.split("=", 1)[0] for line in (ROOT / "deploy" / "env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert used == example


def test_prometheus_scrapes_the_web_service_with_the_token(compose):
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"
    assert job["static_configs"][0]["targets"] == ["web:8000"]
    web = compose["services"]["web"]
    assert "0.0.0.0:8000" in _command(web) and "web" in web["environment"]["ALLOWED_HOSTS"]
    mounts = {volume.split(":")[1] for volume in compose["services"]["prometheus"]["volumes"]}
    assert job["authorization"]["credentials_file"] in mounts


def test_the_migrate_step_creates_the_bucket_once_on_an_s3_server():
    import socket
    import subprocess
    import sys

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        env = {"S3_BUCKET": "compose-check", "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "S3_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "moto-local", "AWS_SECRET_ACCESS_KEY": "moto-local", "PATH": "/usr/bin:/bin"}
        script = [sys.executable, str(ROOT / "scripts" / "ensure_bucket.py")]
        first = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
        second = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0 and "created" in first.stdout, first.stderr
        assert second.returncode == 0 and "exists" in second.stdout, second.stderr
        client = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="moto-local", aws_secret_access_key="moto-local")
        assert "compose-check" in {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}
    finally:
        server.stop()
