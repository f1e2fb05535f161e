"""compose.yaml, validated without a container engine: services, env names, commands, images.

`make deploy-check` brings the stack up for real (scripts/deploy_check.py, about 15 minutes, so
not in the suite). What is checked here without an engine: every service is there and has a
health check; the platform's services wait for the migrate step, the migrations and the bucket;
every variable the app's containers set is one the settings read (so the two cannot drift);
every command names a real entry point, module, management command or file; the image installs
what the sandbox needs, from a registry or from the registry-free base; the override for the
registry-free build only swaps images and entry points; Prometheus scrapes the web service with
the token.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import uuid
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
    assert re.search(r"^ARG BASE=docker\.io/library/debian:\S+$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{BASE\}$", dockerfile, re.M)
    assert "python3.11" in dockerfile and "bubblewrap" in dockerfile
    # Offline from wheels mounted at /wheels (the registry-free build), else from PyPI.
    assert 'offline="--no-index --find-links /wheels"' in dockerfile
    assert "pip install --no-cache-dir $offline -r /tmp/requirements.txt" in dockerfile
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
    mounts = {INTERPOLATION.sub("X", volume).split(":")[1] for volume in compose["services"]["prometheus"]["volumes"]}
    assert job["authorization"]["credentials_file"] in mounts


def test_the_migrate_step_creates_the_bucket_once_on_an_s3_server(s3_server):
    bucket = f"compose-{uuid.uuid4().hex[:12]}"
    env = {**s3_server.env(bucket), "PATH": "/usr/bin:/bin"}
    script = [sys.executable, str(ROOT / "scripts" / "ensure_bucket.py")]
    first = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
    second = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "created" in first.stdout, first.stderr
    assert second.returncode == 0 and "exists" in second.stdout, second.stderr
    assert bucket in {found["Name"] for found in s3_server.client().list_buckets()["Buckets"]}


def test_every_service_has_a_health_check_and_the_platform_waits_for_migrations_and_the_bucket(compose):
    services = compose["services"]
    for name, service in services.items():
        if name == "migrate":  # a one-shot: its exit code is its health
            assert service["restart"] == "no"
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", f"{name} has no health check"
        # Plain words only: podman-compose 1.0 passes them through a shell, breaking on quotes and parentheses.
        assert all(re.fullmatch(r"[\w./:-]+", arg) for arg in test[1:]), f"{name}: {test}"
    # The worker is healthy only when it can start a sandbox.
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "python", "scripts/worker_ready.py"]
    for name in ("web", "worker", "beat", "flower"):
        assert services[name]["entrypoint"] == ["python", "scripts/wait_for_stack.py"], name
        assert services[name]["init"] is True
    assert services["migrate"]["entrypoint"] == ["python", "scripts/wait_for_stack.py", "--reachable"]
    assert (ROOT / "scripts" / "wait_for_stack.py").is_file() and (ROOT / "scripts" / "worker_ready.py").is_file()
    # Only web, Flower and Prometheus publish, and their host ports can be moved off ports in use.
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert set(published) == {"web", "flower", "prometheus"}
    assert all("${" in port for ports in published.values() for port in ports)


def test_the_registry_free_override_only_swaps_images_and_entry_points(compose):
    local = yaml.safe_load((ROOT / "compose.local.yaml").read_text())
    assert set(local["services"]) == SERVICES
    for name, service in local["services"].items():
        assert set(service) <= {"image", "entrypoint", "volumes", "pull_policy", "init"}, name
        assert service["pull_policy"] == "never"
        if "image" in service:
            assert service["image"].startswith("localhost/"), name
        for volume in service.get("volumes", []):
            source, target, mode = volume.split(":")
            assert (ROOT / source).is_file() and mode == "ro", volume
            assert target in service["entrypoint"], f"{name} mounts {source} but does not run it"
    # Debian's daemons in the base, and the base holds them (scripts/deploy_base.sh).
    base = (ROOT / "scripts" / "deploy_base.sh").read_text()
    for package in ("postgresql-15", "redis-server", "prometheus", "python3.11", "bubblewrap", "wget"):
        assert re.search(rf"\b{re.escape(package)}\b", base), package
    assert "mmdebstrap" in base and "podman import" in base


@pytest.mark.django_db(transaction=True)
def test_the_platform_waits_until_the_bucket_exists_then_starts_its_command(s3_server):
    from django.db import connection

    db = connection.settings_dict
    bucket = f"wait-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, **s3_server.env(bucket), "WAIT_TIMEOUT_S": "3",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
           "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "wait-check"}
    script = [sys.executable, str(ROOT / "scripts" / "wait_for_stack.py"), "echo", "started"]
    waited = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert waited.returncode == 1 and "started" not in waited.stdout
    assert f"bucket {bucket!r}" in waited.stdout and "gave up waiting" in waited.stderr
    # The migrate step only needs the S3 endpoint to answer, not the bucket it is about to create.
    reachable = subprocess.run(script[:2] + ["--reachable"] + script[2:], env=env, capture_output=True,
                               text=True, timeout=120)
    assert reachable.returncode == 0 and reachable.stdout.strip().endswith("started"), reachable.stderr
    s3_server.client().create_bucket(Bucket=bucket)
    ready = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)
    assert ready.returncode == 0 and ready.stdout.strip() == "started", ready.stdout + ready.stderr
