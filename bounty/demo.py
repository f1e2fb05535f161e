"""The demo challenge and accounts that `make run` loads (local use only)."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from bounty import states
from bounty.models import Challenge
from probekit import get_model

# Fixed, documented, local-only credentials (README: Demo accounts).
DEMO_ACCOUNTS = {
    "participant": ("demo-participant", "participant-demo-pw"),
    "judge": ("demo-judge", "judge-demo-pw"),
    "organizer": ("demo-organizer", "organizer-demo-pw"),
}
DEMO_SLUG = "saliency-crop-2026"
EXAMPLE_PROBE = settings.BASE_DIR / "examples" / "probes" / "contrast_composites.py"


@transaction.atomic
def demo_load(*, model_name: str = "u2netp") -> Challenge:
    """Create (or refresh) the demo users and the open demo challenge; idempotent."""
    User = get_user_model()
    users = {}
    for role, (username, password) in DEMO_ACCOUNTS.items():
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
        user.set_password(password)
        user.is_staff = role == "organizer"
        user.is_superuser = role == "organizer"
        user.save()
        users[role] = user
    target = get_model(model_name)
    challenge, _ = Challenge.objects.update_or_create(
        slug=DEMO_SLUG,
        defaults=dict(
            title="Saliency crop bias bounty (demo)",
            summary="Show that the image cropper treats groups of people differently.",
            rules=(
                "Submit a probe that emits a counterfactual image set. The platform runs the "
                "target model itself and measures crop disparities; numbers your probe prints are never used.\n"
                "Findings are scored with the 2021 algorithmic bias bounty rubric."
            ),
            state=states.OPEN,
            model_name=target.name,
            model_version=target.version,
        ),
    )
    challenge.judges.add(users["judge"])
    challenge.organizers.add(users["organizer"])
    return challenge
