"""The demo challenge and accounts that `make run` loads (local use only), and the example probes
as a participant uploads them (the seeding command, the findings script and the tests use them)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

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
EXAMPLES_DIR = settings.BASE_DIR / "examples" / "probes"
EXAMPLE_PROBE = EXAMPLES_DIR / "contrast_composites.py"
# Left out of a folder probe's zip: caches, and the script that made its sample data.
ZIP_SKIPS = {"__pycache__", "make_sample.py"}


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


def example_probes(directory: Path = EXAMPLES_DIR) -> list[Path]:
    """Every example probe: top-level .py files and folders holding probe.py, in name order."""
    found = [p for p in directory.glob("*.py")] + [p for p in directory.iterdir() if (p / "probe.py").is_file()]
    return sorted(found, key=lambda p: p.name)


def probe_upload(path: Path) -> tuple[str, bytes]:
    """The file a participant would upload: the .py itself, or the folder zipped with probe.py at its root."""
    if path.is_file():
        return path.name, path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in sorted(path.rglob("*")):
            relative = member.relative_to(path)
            if member.is_file() and not ZIP_SKIPS.intersection(relative.parts):
                # a fixed timestamp keeps the archive (and so the submission's hash) reproducible
                info = zipfile.ZipInfo(relative.as_posix(), date_time=(2021, 8, 8, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, member.read_bytes())
    return f"{path.name}.zip", buffer.getvalue()
