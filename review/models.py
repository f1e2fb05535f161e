"""Judges' reviews, assignments and comments: every write is in review.services.

The tables kept their first names (`grading_review`, …) when they moved here from grading.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Review(models.Model):
    """One judge's ratings of one submission."""

    submission = models.ForeignKey("bounty.Submission", on_delete=models.CASCADE, related_name="reviews")
    judge = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    harm_type = models.CharField(max_length=40, blank=True)
    ratings = models.JSONField(default=dict, blank=True, help_text="factor -> level")
    justifications = models.JSONField(default=dict, blank=True, help_text="factor -> sentence")
    comment = models.TextField(blank=True)
    conflict_of_interest = models.BooleanField(default=False)
    score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "grading_review"
        constraints = [models.UniqueConstraint(fields=["submission", "judge"], name="one_review_per_judge")]


class ReviewAssignment(models.Model):
    """A judge asked (or volunteering) to review a submission."""

    submission = models.ForeignKey("bounty.Submission", on_delete=models.CASCADE, related_name="assignments")
    judge = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_assignments")
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "grading_reviewassignment"
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["submission", "judge"], name="one_assignment_per_judge")]


class SubmissionComment(models.Model):
    """A judges-only note, or a message of the thread the participant sees (needs_info)."""

    submission = models.ForeignKey("bounty.Submission", on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    # False: judges only; True: part of the thread with the participant.
    to_participant = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "grading_submissioncomment"
        ordering = ["created_at", "pk"]
