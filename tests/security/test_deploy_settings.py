"""Production settings pass Django's deployment checklist."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check_deploy(**env) -> subprocess.CompletedProcess:
    # Test-only switches (the browser tests set DJANGO_ALLOW_ASYNC_UNSAFE) are not part of a deployment.
    dropped = ("DEBUG", "HTTPS", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE")
    environment = {k: v for k, v in os.environ.items() if k not in dropped}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=environment, capture_output=True, text=True)


def test_check_deploy_is_clean_with_the_production_settings():
    result = _check_deploy(HTTPS="1", SECRET_KEY=secrets.token_urlsafe(60))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_a_plain_http_setup():
    # The check is not vacuous: without HTTPS hardening it warns.
    result = _check_deploy(SECRET_KEY=secrets.token_urlsafe(60))
    assert result.returncode != 0 and "SECURE_SSL_REDIRECT" in (result.stdout + result.stderr)
