from django import forms
from django.contrib import admin, messages

from bounty.admin_forms import ChallengeAdminForm, PhaseFormSet
from bounty.errors import BountyError
from bounty.models import Challenge, Phase, Submission, SubmissionEvent, Team, Webhook, WebhookDelivery
from bounty.services import check_vendor_response, submission_respond
from bounty.webhook_guard import WebhookTargetRefused, check_webhook_url


class PhaseInline(admin.TabularInline):
    model = Phase
    formset = PhaseFormSet
    extra = 0
    fields = ("name", "starts_at", "ends_at", "daily_limit", "total_limit", "leaderboard_visibility")


@admin.register(Challenge)
class ChallengeAdmin(admin.ModelAdmin):
    form = ChallengeAdminForm
    inlines = [PhaseInline]
    list_display = ("slug", "title", "state", "model_name", "model_version", "closes_at")
    list_filter = ("state",)
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("judges", "organizers")
    readonly_fields = ("model_version", "model_sha256")

    def save_model(self, request, obj, form, change):
        # Opening freezes the target's version and weights hash (bounty.services.check_challenge_model).
        for field, value in getattr(form, "frozen_model", {}).items():
            setattr(obj, field, value)
        super().save_model(request, obj, form, change)


class SubmissionEventInline(admin.TabularInline):
    model = SubmissionEvent
    extra = 0
    readonly_fields = ("actor", "from_state", "to_state", "reason", "at")
    can_delete = False


RESPONSE_FIELDS = ("vendor_response", "vendor_response_version", "vendor_response_note")


class SubmissionAdminForm(forms.ModelForm):
    class Meta:
        model = Submission
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        response = cleaned.get("vendor_response")
        if response and any(field in self.changed_data for field in RESPONSE_FIELDS):
            try:
                check_vendor_response(response=response, version=cleaned.get("vendor_response_version", ""),
                                      note=cleaned.get("vendor_response_note", ""))
            except BountyError as exc:
                self.add_error(exc.field, exc.message)
        return cleaned


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    form = SubmissionAdminForm
    list_display = ("id", "finding_identifier", "title", "challenge", "participant", "state", "provisional_score",
                    "final_score", "embargo_until", "vendor_response", "created_at")
    list_filter = ("state", "challenge", "vendor_response")
    search_fields = ("title", "participant__username", "finding_identifier")
    readonly_fields = ("probe_sha256", "phase", "state_changed_at", "created_at", "finding_identifier",
                       "vendor_responded_at")
    list_select_related = ("challenge", "participant")
    inlines = [SubmissionEventInline]

    def save_model(self, request, obj, form, change):
        # The organizer's response goes through the service: recorded, and an embargoed finding published.
        responded = obj.vendor_response and any(field in form.changed_data for field in RESPONSE_FIELDS)
        super().save_model(request, obj, form, change)
        if responded:
            try:
                submission_respond(submission=obj, response=obj.vendor_response, version=obj.vendor_response_version,
                                   note=obj.vendor_response_note, actor=request.user)
            except BountyError as exc:
                self.message_user(request, f"Response recorded, not published: {exc.message}", level=messages.WARNING)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name",)
    filter_horizontal = ("members",)


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    fields = readonly_fields = ("at", "submission_id", "attempt", "status_code", "ok", "error")
    can_delete = False
    ordering = ("-at",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class WebhookAdminForm(forms.ModelForm):
    class Meta:
        model = Webhook
        fields = "__all__"

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            check_webhook_url(url)
        except WebhookTargetRefused as exc:
            raise forms.ValidationError(f"Refused: {exc}.") from None
        return url


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookAdminForm
    list_display = ("challenge", "url", "active", "created_at")
    list_filter = ("active", "challenge")
    inlines = [WebhookDeliveryInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("at", "webhook", "submission_id", "attempt", "status_code", "ok", "error")
    list_filter = ("ok", "webhook__challenge")
    readonly_fields = ("webhook", "submission_id", "event", "body", "attempt", "status_code", "ok", "error", "at")

    def has_add_permission(self, request) -> bool:
        return False
