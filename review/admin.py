from django.contrib import admin

from review.models import Review, ReviewAssignment, SubmissionComment


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("id", "submission", "judge", "harm_type", "score", "conflict_of_interest", "updated_at")
    list_filter = ("conflict_of_interest",)
    # Scores come from the rubric engine (review.services.review_save), never typed in.
    readonly_fields = ("score",)


@admin.register(ReviewAssignment)
class ReviewAssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "submission", "judge", "assigned_by", "created_at")
    raw_id_fields = ("submission",)


@admin.register(SubmissionComment)
class SubmissionCommentAdmin(admin.ModelAdmin):
    list_display = ("id", "submission", "author", "to_participant", "created_at")
    list_filter = ("to_participant",)
    raw_id_fields = ("submission",)
