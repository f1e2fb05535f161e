from django.core.management.base import BaseCommand

from bounty.demo import DEMO_ACCOUNTS, demo_load


class Command(BaseCommand):
    help = "Load the demo challenge and the demo accounts (local use only)."

    def add_arguments(self, parser):
        parser.add_argument("--model", default="u2netp", help="target model of the demo challenge")

    def handle(self, *args, model, **options):
        challenge = demo_load(model_name=model)
        self.stdout.write(f"Demo challenge: /challenges/{challenge.slug}/ (target {challenge.model_name} {challenge.model_version})")
        self.stdout.write("Demo accounts (local only):")
        for role, (username, password) in DEMO_ACCOUNTS.items():
            self.stdout.write(f"  {role:<12} {username:<18} password: {password}")
