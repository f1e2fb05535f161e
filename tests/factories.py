"""Test setup through the services, not raw saves."""
from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model

from bounty import services, states
from bounty.models import Challenge

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PROBE = ROOT / "examples" / "probes" / "contrast_composites.py"


def user_create(username: str, *, password: str = "pw-for-tests-1", email: str | None = None):
    return get_user_model().objects.create_user(username=username, password=password, email=email or f"{username}@example.org")


def challenge_create(*, slug: str = "test-challenge", model_name: str = "spectral-residual", judges=(), **fields) -> Challenge:
    from probekit import get_model

    model = get_model(model_name)
    defaults = dict(title=f"Challenge {slug}", state=states.OPEN, model_name=model.name, model_version=model.version,
                    measure_generalization=False,
                    limits={"wall_s": 60, "cpu_s": 30, "memory_bytes": 1024**3})
    defaults.update(fields)
    challenge = Challenge.objects.create(slug=slug, **defaults)
    challenge.judges.add(*judges)
    return challenge


def submission_create(*, challenge, participant, probe: Path = EXAMPLE_PROBE, title: str = "Contrast wins the crop", **kw):
    return services.submission_create(
        challenge=challenge, participant=participant, title=title, probe_name=probe.name,
        probe_content=probe.read_bytes(), self_assessment={"harm_type": "under-representation"}, **kw,
    )
