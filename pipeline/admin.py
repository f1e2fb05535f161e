from django.contrib import admin

from pipeline.models import ImageSet, ProbeRun


@admin.register(ProbeRun)
class ProbeRunAdmin(admin.ModelAdmin):
    list_display = ("id", "submission", "backend", "status", "attempt", "exit_code", "wall_s", "queued_at")
    list_filter = ("status", "backend")
    readonly_fields = [f.name for f in ProbeRun._meta.fields]


@admin.register(ImageSet)
class ImageSetAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "n_images", "attribute", "manifest_sha256", "created_at")
