from django.contrib import admin

from grading.models import Measurement, Review, Score


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    list_display = ("id", "submission", "model_name", "status", "progress_done", "progress_total", "created_at")
    list_filter = ("status", "model_name")
    exclude = ("document_json",)
    readonly_fields = ("document_sha256", "manifest_sha256", "probe_sha256")


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("id", "submission", "judge", "harm_type", "score", "updated_at")


@admin.register(Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = ("id", "submission", "kind", "value", "rubric", "created_at")
