"""`python -m bounty.cli` as a participant runs it: a separate process talking HTTP to the live server."""
import subprocess
import sys

import pytest
from rest_framework.authtoken.models import Token

from bounty import errors, states
from bounty.models import Submission
from tests.factories import EXAMPLE_PROBE, ROOT, challenge_create, user_create

pytestmark = pytest.mark.django_db(transaction=True)


def run_cli(*args: str, env_extra: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    # Not the test settings' environment: the CLI is a plain client and must not need Django.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "bounty.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd="/")


def test_the_cli_gets_a_token_with_the_password(live_server):
    alice = user_create("alice")
    result = run_cli("--url", live_server.url, "token", "--username", "alice",
                     env_extra={"BOUNTY_PASSWORD": "pw-for-tests-1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == Token.objects.get(user=alice).key


def test_the_cli_prints_the_platforms_refusal_and_exits_1(live_server):
    token = Token.objects.create(user=user_create("alice")).key
    challenge_create(slug="closed-one", state=states.CLOSED)
    result = run_cli("--url", live_server.url, "--token", token, "submit", str(EXAMPLE_PROBE), "--challenge", "closed-one")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: " + errors.CHALLENGE_NOT_OPEN.format(state="closed")
    assert not Submission.objects.exists()


def test_the_cli_without_a_token_explains_how_to_get_one(live_server):
    result = run_cli("--url", live_server.url, "submit", str(EXAMPLE_PROBE), "--challenge", "x")
    assert result.returncode == 2 and "BOUNTY_TOKEN" in result.stderr


def test_the_cli_submits_and_follows_the_probe_until_it_is_measured(live_server, celery_worker):
    alice = user_create("alice")
    challenge_create(slug="cli-challenge")
    token = Token.objects.create(user=alice).key
    result = run_cli("--url", live_server.url, "--token", token, "submit", str(EXAMPLE_PROBE),
                     "--challenge", "cli-challenge", "--title", "Contrast from the terminal", "--interval", "0.5",
                     "--timeout", "240")
    assert result.returncode == 0, (result.stdout, result.stderr, celery_worker.log_tail())
    submission = Submission.objects.get(participant=alice)
    assert submission.title == "Contrast from the terminal"
    assert submission.state in (states.MEASURED, states.IN_REVIEW)
    out = result.stdout
    assert out.startswith(f"submitted #{submission.pk}: ")
    assert f"#{submission.pk} running" in out or f"#{submission.pk} measuring" in out
    assert "preference:high>low" in out and "provisional score:" in out
