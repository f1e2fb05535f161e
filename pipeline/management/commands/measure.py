"""`python manage.py measure IMAGE_SET_DIR [--model NAME] [--variant NAME@V]... [--challenge SLUG] [--seed N] --json`.

With `--challenge` and `--probe-sha256` it repeats the platform's measurement of a submission
byte for byte: the finding page prints that command.
"""
from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from blobs import StorageUnavailable
from bounty.models import Challenge
from bounty.selectors import challenge_measurement_settings
from grading import services as grading_services
from grading.measurement import document_dumps, measure_image_set
from probekit import DEFAULT_MODEL
from probekit.imageset import ImageSetRejected


class Command(BaseCommand):
    help = "Measure an image set on the target model and print the metrics document."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--model", help=f"target model (default: the challenge's, else {DEFAULT_MODEL})")
        parser.add_argument("--challenge", help="take model, variants, ratios and compose options from this challenge")
        parser.add_argument("--variant", action="append", default=[], metavar="NAME@V",
                            help="also measure this variant (added to the challenge's)")
        parser.add_argument("--probe-sha256", help="the probe's hash, recorded in the document as the platform does")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--workers", type=int, default=1, help="processes for the model runs")
        parser.add_argument("--artifacts", help="also write plots and a contact sheet into this directory")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        measured = dict(model=DEFAULT_MODEL, variants=[], ratios=None, compose_options=None, generalization=False)
        if options["challenge"]:
            challenge = Challenge.objects.filter(slug=options["challenge"]).first()
            if challenge is None:
                raise CommandError(f"no challenge with slug {options['challenge']!r}")
            measured = challenge_measurement_settings(challenge=challenge)  # what the pipeline measures with
        if options["model"]:
            measured["model"] = options["model"]

        def progress(done: int, total: int) -> None:
            if not options["json"] and (done == total or done % 50 == 0):
                print(f"measured {done}/{total} images", file=sys.stderr)

        measured["variants"] = measured["variants"] + [v for v in options["variant"] if v not in measured["variants"]]
        try:
            # A registered model kept in the object storage is fetched (and checked) first.
            grading_services.registered_models_fetch(names=[measured["model"], *measured["variants"]])
            document = measure_image_set(
                options["directory"], seed=options["seed"], probe_sha256=options["probe_sha256"],
                workers=options["workers"], cache_dir=settings.MEASURE_CACHE_DIR, progress=progress,
                artifacts_dir=options["artifacts"], **measured,
            )
        except ImageSetRejected as exc:
            raise CommandError(f"the image set is invalid: {exc}") from None
        except (ValueError, StorageUnavailable) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(document_dumps(document))
