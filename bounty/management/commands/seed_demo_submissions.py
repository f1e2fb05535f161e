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
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from bounty.demo import DEMO_ACCOUNTS, DEMO_SLUG, example_probes, probe_upload
from bounty.errors import BountyError
from bounty.models import Challenge, Submission
from bounty.services import submission_create

# The 2021 rubric's harm each example argues; anything else defaults to the rubric's own default.
HARM_TYPES = {"script_latin_arabic": "erasure"}
DEFAULT_HARM = "under-representation"


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
