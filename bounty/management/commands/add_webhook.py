"""`python manage.py add_webhook SLUG URL --secret S`: register an organizer's receiver."""
from django.core.management.base import BaseCommand, CommandError

from bounty.errors import BountyError
from bounty.webhooks import webhook_create


class Command(BaseCommand):
    help = "POST every state change of the challenge's submissions to URL, signed with the secret."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("url")
        parser.add_argument("--secret", required=True, help="key of the X-Cropbias-Signature HMAC-SHA256")

    def handle(self, *args, slug, url, secret, **options):
        try:
            webhook = webhook_create(slug=slug, url=url, secret=secret)
        except BountyError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"webhook #{webhook.pk}: {slug} → {url}")
