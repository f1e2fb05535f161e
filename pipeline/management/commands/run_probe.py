"""`python manage.py run_probe PROBE [--backend] [--challenge] [--out] --json`."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bounty.models import Challenge
from bounty.selectors import challenge_limits, challenge_target_model
from sandbox.backends import BACKENDS
from sandbox.limits import Limits
from sandbox.runner import run_probe


class Command(BaseCommand):
    help = "Run one probe (.py, or .zip with probe.py at its root) in the sandbox and validate its image set."

    def add_arguments(self, parser):
        parser.add_argument("probe")
        parser.add_argument("--backend", choices=BACKENDS, default=None)
        parser.add_argument("--challenge", help="use this challenge's limits")
        parser.add_argument("--out", help="where the image set goes (default: var/runs/<id>)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        probe = Path(options["probe"])
        if not probe.is_file():
            raise CommandError(f"no such probe file: {probe}")
        limits, target_model = Limits(), None
        if options["challenge"]:
            challenge = Challenge.objects.filter(slug=options["challenge"]).first()
            if challenge is None:
                raise CommandError(f"no challenge with slug {options['challenge']!r}")
            limits = challenge_limits(challenge=challenge)
            target_model = challenge_target_model(challenge=challenge)
        run_id = uuid.uuid4().hex
        out = Path(options["out"]) if options["out"] else settings.RUNS_DIR / f"cli-{run_id}"
        if not options["json"]:
            self.stderr.write(f"running {probe} in the {options['backend'] or settings.SANDBOX_BACKEND} sandbox…")
        result = run_probe(probe, backend=options["backend"] or settings.SANDBOX_BACKEND, limits=limits,
                           out_dir=out, run_id=run_id, target_model=target_model)
        self.stdout.write(json.dumps(result.to_json(), indent=None if options["json"] else 1))
