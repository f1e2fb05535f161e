from django import forms
from django.contrib import admin

from grading.models import Measurement, RegisteredModel, Score
from grading.services import registered_model_upload
from probekit.models.registered import MAX_MODEL_BYTES, ModelRejected


class RegisteredModelForm(forms.ModelForm):
    """Upload + card: the same checks as `manage.py add_model` (docs/models.md)."""

    model_file = forms.FileField(label="ONNX model", help_text=f"at most {MAX_MODEL_BYTES} bytes")
    card = forms.CharField(widget=forms.Textarea(attrs={"rows": 14, "cols": 90}), help_text="the card, JSON")

    class Meta:
        model = RegisteredModel
        fields = ("name",)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            report = registered_model_upload(model_file=cleaned["model_file"], name=cleaned["name"],
                                             card_text=cleaned["card"])
        except ModelRejected as exc:
            raise forms.ValidationError(str(exc)) from None
        self.instance.version, self.instance.sha256 = report["version"], report["sha256"]
        return cleaned


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "sha256", "registered_by", "created_at")
    readonly_fields = ("name", "version", "sha256", "registered_by", "created_at")

    def has_change_permission(self, request, obj=None):
        return False  # a registered version is frozen

    def get_form(self, request, obj=None, change=False, **kwargs):
        return super().get_form(request, obj, change, **kwargs) if obj is not None else RegisteredModelForm

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def save_model(self, request, obj, form, change):
        obj.registered_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    list_display = ("id", "submission", "model_name", "status", "progress_done", "progress_total", "created_at")
    list_filter = ("status", "model_name")
    exclude = ("document_json",)
    readonly_fields = ("document_sha256", "manifest_sha256", "probe_sha256")


@admin.register(Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = ("id", "submission", "kind", "value", "rubric", "created_at")
