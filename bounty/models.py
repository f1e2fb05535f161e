"""Challenges, participants and teams, submissions and their audit trail."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from bounty import states


def default_ratios() -> list[float]:
    return [0.56, 1.0, 1.14, 2.0]


# Who may run a registered target model (docs/models.md): the one place these are spelled.
MODEL_PUBLIC = "public"
MODEL_PRIVATE = "private"
MODEL_VISIBILITIES = [(MODEL_PUBLIC, "Public: probes may run it"), (MODEL_PRIVATE, "Private: only the platform runs it")]


class Challenge(models.Model):
    """A bias bounty on one frozen target model."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=300, blank=True)
    rules = models.TextField(blank=True, help_text="Markdown")
    state = models.CharField(max_length=16, choices=states.CHALLENGE_STATES, default=states.DRAFT)
    model_name = models.CharField(max_length=100, default="u2netp", help_text="probekit model, frozen when opened")
    model_version = models.CharField(max_length=100, blank=True)
    model_sha256 = models.CharField(max_length=80, blank=True, help_text="sha256:<hex> of its weights, frozen when opened")
    model_visibility = models.CharField(
        max_length=8, choices=MODEL_VISIBILITIES, default=MODEL_PUBLIC,
        help_text="a registered model: public (probes may run it in the sandbox, participants may download it) or "
        "private (only the platform runs it; probes see its card)")
    model_variants = models.JSONField(default=list, blank=True, help_text='e.g. ["u2netp@int8"]')
    aspect_ratios = models.JSONField(default=default_ratios)
    compose_options = models.JSONField(default=dict, blank=True, help_text="background, padding, layout for compose: pairs")
    limits = models.JSONField(default=dict, blank=True, help_text="overrides of the sandbox limits")
    measure_generalization = models.BooleanField(default=True)
    rubric_name = models.CharField(max_length=100, default="twitter-2021")
    rubric_version = models.CharField(max_length=20, default="1")
    opens_at = models.DateTimeField(null=True, blank=True)
    closes_at = models.DateTimeField(null=True, blank=True)
    daily_limit = models.PositiveIntegerField(default=10)
    total_limit = models.PositiveIntegerField(default=100)
    show_provisional = models.BooleanField(default=False, help_text="show provisional scores on the leaderboard")
    participants_see_own_score = models.BooleanField(
        default=True, help_text="a participant sees the scores of their own findings even while a phase's leaderboard "
        "is hidden from them")
    embargo = models.DurationField(
        null=True, blank=True,
        help_text="coordinated disclosure: an accepted finding publishes this long after acceptance, or when the "
        "organizer records a response (e.g. '30 00:00:00' is 30 days); empty: judges publish at once")
    judges = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="judged_challenges", blank=True)
    organizers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="organized_challenges", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.title


# Who may see a phase's leaderboard: the one place these are spelled (rules in bounty.phases).
BOARD_PUBLIC = "public"
BOARD_HIDDEN_UNTIL_END = "hidden_until_end"
BOARD_ORGANIZERS = "organizers"
BOARD_VISIBILITIES = [(BOARD_PUBLIC, "Public"), (BOARD_HIDDEN_UNTIL_END, "Hidden until the phase ends"),
                      (BOARD_ORGANIZERS, "Organizers only")]


class Phase(models.Model):
    """A stretch of a challenge with its own leaderboard and, when set, its own quota."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="phases")
    name = models.CharField(max_length=100)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    daily_limit = models.PositiveIntegerField(null=True, blank=True, help_text="empty: the challenge's daily limit")
    total_limit = models.PositiveIntegerField(null=True, blank=True, help_text="empty: the challenge's total limit")
    leaderboard_visibility = models.CharField(max_length=20, choices=BOARD_VISIBILITIES, default=BOARD_PUBLIC)

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [models.Index(fields=["challenge", "starts_at", "ends_at"], name="phase_open_idx")]

    def __str__(self) -> str:
        return f"{self.challenge.slug}: {self.name}"

    @property
    def own_quota(self) -> bool:
        return self.daily_limit is not None or self.total_limit is not None


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams")

    def __str__(self) -> str:
        return self.name


# The organizer's answer to a finding under embargo: the one place these are spelled.
RESPONSE_ACKNOWLEDGED = "acknowledged"
RESPONSE_FIXED = "fixed"
RESPONSE_WONT_FIX = "wont_fix"
VENDOR_RESPONSES = [(RESPONSE_ACKNOWLEDGED, "Acknowledged"), (RESPONSE_FIXED, "Fixed in version …"),
                    (RESPONSE_WONT_FIX, "Won't fix")]


class FindingSerial(models.Model):
    """The last finding number given in a year; its row lock keeps identifiers unique and in order."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)


def probe_upload_to(instance: "Submission", filename: str) -> str:
    suffix = ".zip" if filename.lower().endswith(".zip") else ".py"
    return f"probes/{instance.challenge.slug}/{instance.probe_sha256[7:23]}{suffix}"


class Submission(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.PROTECT, related_name="submissions")
    participant = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions")
    # The phase open when it was made (set once, at creation); a phase with findings cannot be deleted.
    phase = models.ForeignKey(Phase, null=True, blank=True, on_delete=models.PROTECT, related_name="submissions")
    title = models.CharField(max_length=200)
    probe = models.FileField(upload_to=probe_upload_to)
    probe_name = models.CharField(max_length=200, default="probe.py")
    probe_sha256 = models.CharField(max_length=80)
    writeup = models.TextField(blank=True, help_text="Markdown")
    self_assessment = models.JSONField(default=dict, blank=True)
    harm_type = models.CharField(max_length=40, blank=True)
    state = models.CharField(max_length=20, choices=states.SUBMISSION_STATES, default=states.SUBMITTED, db_index=True)
    state_reason = models.TextField(blank=True, help_text="plain-words reason of the last state change")
    state_changed_at = models.DateTimeField(auto_now_add=True)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates")
    provisional_score = models.FloatField(null=True, blank=True)
    final_score = models.FloatField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Stable public name of a published finding (CB-<year>-<serial>), given once when it publishes.
    finding_identifier = models.CharField(max_length=20, unique=True, null=True, blank=True, editable=False)
    embargo_until = models.DateTimeField(null=True, blank=True, help_text="set on acceptance from the challenge's embargo")
    vendor_response = models.CharField(max_length=20, choices=VENDOR_RESPONSES, blank=True,
                                       help_text="the organizer's response; recording one publishes an embargoed finding")
    vendor_response_version = models.CharField(max_length=100, blank=True, help_text="for 'fixed': the fixed version")
    vendor_response_note = models.TextField(blank=True, help_text="for 'won't fix': why")
    vendor_responded_at = models.DateTimeField(null=True, blank=True)
    # Seeded by the platform (the demo): outside every quota, queued behind participants' work, and
    # on the leaderboard a baseline: shown, never ranked (leaderboard.py).
    is_demo = models.BooleanField(default=False)
    # The headline test's disparity and 95% interval (grading.intervals), written when it publishes.
    interval_test = models.CharField(max_length=300, blank=True)
    interval_estimate = models.FloatField(null=True, blank=True)
    interval_low = models.FloatField(null=True, blank=True)
    interval_high = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["challenge", "state", "-final_score"], name="sub_leaderboard_idx"),
            models.Index(fields=["challenge", "participant", "created_at"], name="sub_quota_idx"),
            # The leaderboard (bounty.selectors, leaderboard section): one partial index per order the page
            # offers, each ending in the order's tie-breaks and holding the id, so a page — however deep —
            # is an index-only walk, and its count and ranks read the board's rows only. Published
            # results always have a score (services.submission_publish), so no NULLS clause is needed.
            models.Index(fields=["challenge", "-final_score", "published_at", "id"], name="sub_board_score_idx",
                         condition=models.Q(state=states.PUBLISHED)),
            models.Index(fields=["challenge", "published_at", "id"], name="sub_board_date_idx",
                         condition=models.Q(state=states.PUBLISHED)),
            models.Index(fields=["challenge", "title", "id"], name="sub_board_title_idx",
                         condition=models.Q(state=states.PUBLISHED)),
            models.Index(fields=["challenge", "harm_type", "-final_score", "published_at", "id"],
                         name="sub_board_harm_idx", condition=models.Q(state=states.PUBLISHED)),
            # Provisional scores may be missing (NULLS LAST): SQLite cannot index that, so its migration
            # creates it on PostgreSQL only (0009_leaderboard_indexes).
            models.Index(models.F("challenge"), models.F("provisional_score").desc(nulls_last=True),
                         models.F("published_at"), models.F("id"), name="sub_board_provisional_idx",
                         condition=models.Q(state=states.PUBLISHED)),
            models.Index(fields=["challenge", "phase", "-final_score", "published_at", "id"],
                         name="sub_phase_board_idx", condition=models.Q(state=states.PUBLISHED)),
            # The few baselines above a score, subtracted from its rank (leaderboard._RANKS_SQL).
            models.Index(fields=["challenge", "-final_score"], name="sub_board_baseline_idx",
                         condition=models.Q(state=states.PUBLISHED, is_demo=True)),
            models.Index(fields=["team", "challenge", "created_at"], name="sub_team_quota_idx"),
            # Not declared here: the search's trigram index on the upper-cased title (sub_board_title_trgm_idx),
            # PostgreSQL only, made by its migration (0010_leaderboard_search).
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class SubmissionEvent(models.Model):
    """Audit trail: who moved a submission from which state to which, when and why."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    from_state = models.CharField(max_length=20)
    to_state = models.CharField(max_length=20)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]


class Webhook(models.Model):
    """An organizer's receiver: every state change of the challenge's submissions is POSTed to it, signed."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500, help_text="http(s) URL that receives the POSTs")
    secret = models.CharField(max_length=200, help_text="key of the X-Cropbias-Signature HMAC-SHA256")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.challenge.slug} → {self.url}"


class WebhookDelivery(models.Model):
    """One attempt to deliver one event: what the receiver answered, or why it could not."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    submission_id = models.BigIntegerField(db_index=True)
    event = models.CharField(max_length=60)
    body = models.TextField(help_text="the exact bytes sent and signed")
    attempt = models.PositiveIntegerField(default=1)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "webhook deliveries"


class NotificationPreference(models.Model):
    """A person's choice about the platform's e-mails; no row means the default (on)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference")
    state_emails = models.BooleanField(default=True, help_text="e-mail me when a submission of mine changes state")
