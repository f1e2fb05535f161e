"""`python manage.py add_model MODEL.onnx --name NAME --card CARD.json [--json]`: register an organizer's model."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from grading.services import registered_model_create
from probekit.models.registered import ModelRejected


class Command(BaseCommand):
    help = "Check an ONNX saliency model and its card (docs/models.md) and register it as a target model."

    def add_arguments(self, parser):
        parser.add_argument("model", help="the .onnx file")
        parser.add_argument("--name", required=True, help="the name challenges and `--model` use")
        parser.add_argument("--card", required=True, help="the card (JSON): how to feed the network, read its map")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            report = registered_model_create(model_path=options["model"], name=options["name"],
                                             card_path=options["card"])
        except ModelRejected as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(report))
        else:
            self.stdout.write(f"registered {report['name']} {report['version']} {report['sha256']}; "
                              f"variants: {', '.join(report['variants'])}")
