"""`python manage.py model_report SLUG --candidate MODEL[@VARIANT] [--json] [--queue] [--audit]`.

Re-measures every accepted or published finding of the challenge on the candidate (the stored
image set, same seed and settings; no probe runs again) and prints the report
(docs/statistics.md, "The model report"). The report is stored, so the challenge's models page
shows it too. A candidate that cannot be measured ends the command with one line and exit 1.
"""
from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from bounty.models import Challenge
from grading.models import REPORT_DONE
from pipeline import reports


class Command(BaseCommand):
    help = "Re-measure a challenge's findings on a candidate model and print the model report."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--candidate", help="the model to compare with: u2netp@int8, spectral-residual, acme@prune50")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--queue", action="store_true",
                            help="send it to a worker (the bulk queue) and print the report's id instead")
        parser.add_argument("--audit", action="store_true",
                            help="queue one report per compression variant of the challenge's model")

    def handle(self, *args, **options):
        challenge = Challenge.objects.filter(slug=options["slug"]).first()
        if challenge is None:
            raise CommandError(f"no challenge with slug {options['slug']!r}")
        if options["audit"]:
            audit, queued = reports.audit_create(challenge=challenge)
            self.stdout.write(json.dumps({"audit": audit, "reports": {r.candidate: r.pk for r in queued}})
                              if options["json"] else f"audit {audit}: queued {', '.join(r.candidate for r in queued)}")
            return
        if not options["candidate"]:
            raise CommandError("name a candidate: --candidate MODEL[@VARIANT]")
        try:
            report = reports.report_create(challenge=challenge, candidate=options["candidate"])
        except reports.ReportFailed as exc:
            raise CommandError(str(exc)) from None
        if options["queue"]:
            reports.report_enqueue(report=report)
            self.stdout.write(json.dumps({"report": report.pk}) if options["json"] else f"queued report {report.pk}")
            return
        reports.report_execute(report_id=report.pk, split=False)  # here, whole: no worker needed
        report.refresh_from_db()
        if report.status != REPORT_DONE:
            raise CommandError(report.error or f"the report ended {report.status}")
        content = reports.report_content(report)
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if options["json"]:
            self.stdout.write(json.dumps(content, sort_keys=True))
            return
        self.stdout.write(f"{content['challenge']}: {content['model']} → {content['candidate']}, "
                          f"{len(content['findings'])} test(s)")
        for row in content["findings"]:
            change = row["abs_disparity_change"]
            self.stdout.write(f"  #{row['submission']} {row['test']}: {_number(row['before']['estimate'])} → "
                              f"{_number(row['after']['estimate'])}, Δ|disparity| {_number(change['estimate'])} "
                              f"[{_number(change['ci'][0])}, {_number(change['ci'][1])}]  {row['verdict']}")


def _number(value) -> str:
    return "—" if value is None else f"{value:.3f}"
