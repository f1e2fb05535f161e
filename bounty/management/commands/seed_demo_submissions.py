"""`python manage.py seed_demo_submissions`: the example probes as the demo challenge's first entries.

Each probe in examples/probes/ (a .py file, or a folder with probe.py that is zipped as a
participant would) is submitted by the demo participant to the demo challenge through
`submission_create`, so the worker runs, measures and queues it for review like any other
entry. Idempotent: a probe whose file name the demo participant already submitted is skipped,
and the check and the submissions are one transaction holding the challenge's row, so two
starts at once cannot both submit (each submission's run is sent only once it is committed).
"""
from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from bounty.demo import DEMO_ACCOUNTS, DEMO_SLUG
from bounty.errors import BountyError
from bounty.models import Challenge, Submission
from bounty.services import submission_create

EXAMPLES_DIR = settings.BASE_DIR / "examples" / "probes"
# The 2021 rubric's harm each example argues; anything else defaults to the rubric's own default.
HARM_TYPES = {"script_latin_arabic": "erasure"}
DEFAULT_HARM = "under-representation"
ZIP_SKIPS = {"__pycache__", "make_sample.py"}


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


def probe_docstring(path: Path) -> str:
    source = (path / "probe.py" if path.is_dir() else path).read_text(encoding="utf-8")
    return ast.get_docstring(ast.parse(source)) or ""


class Command(BaseCommand):
    help = "Submit every example probe as the demo participant to the demo challenge (skips ones already there)."

    @transaction.atomic
    def handle(self, *args, **options):
        challenge = Challenge.objects.select_for_update().filter(slug=DEMO_SLUG).first()
        if challenge is None:
            raise CommandError(f"no demo challenge {DEMO_SLUG!r}: run `python manage.py load_demo` first")
        username = DEMO_ACCOUNTS["participant"][0]
        participant = get_user_model().objects.filter(username=username).first()
        if participant is None:
            raise CommandError(f"no demo participant {username!r}: run `python manage.py load_demo` first")
        submitted = set(Submission.objects.filter(challenge=challenge, participant=participant)
                        .values_list("probe_name", flat=True))
        for path in example_probes():
            name, content = probe_upload(path)
            if name in submitted:
                self.stdout.write(f"  already submitted: {name}")
                continue
            summary, _, writeup = probe_docstring(path).partition("\n")
            harm = HARM_TYPES.get(path.stem, DEFAULT_HARM)
            try:
                submission = submission_create(
                    challenge=challenge, participant=participant, title=summary.strip()[:200] or path.stem,
                    probe_name=name, probe_content=content, writeup=writeup.strip(),
                    self_assessment={"harm_type": harm, "justification": "Reference probe shipped with the platform.",
                                     "ratings": {}},
                    is_demo=True,
                )
            except BountyError as exc:
                self.stderr.write(f"  not submitted: {name}: {exc}")
                continue
            self.stdout.write(f"  submitted: {name} as #{submission.pk}")
