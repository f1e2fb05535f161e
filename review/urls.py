"""The judge console, mounted at /judge/ (judges of a challenge only; others get 404), and the
participant's side of the needs_info thread, mounted at the site's root."""
from django.urls import path

from review import model_reports, views

urlpatterns = [
    path("", views.judge_queue, name="judge-queue"),
    path("submissions/<int:submission_id>/", views.judge_submission, name="judge-submission"),
    path("submissions/<int:submission_id>/review/", views.judge_review, name="judge-review"),
    path("submissions/<int:submission_id>/score-preview/", views.judge_score_preview, name="judge-score-preview"),
    path("submissions/<int:submission_id>/decide/", views.judge_decide, name="judge-decide"),
    path("submissions/<int:submission_id>/reopen/", views.judge_reopen, name="judge-reopen"),
    path("submissions/<int:submission_id>/publish/", views.judge_publish, name="judge-publish"),
    path("submissions/<int:submission_id>/rerun/", views.judge_rerun, name="judge-rerun"),
    path("submissions/<int:submission_id>/rerun.json", views.judge_rerun_status, name="judge-rerun-status"),
    path("submissions/<int:submission_id>/assign/", views.judge_assign, name="judge-assign"),
    path("submissions/<int:submission_id>/conflict/", views.judge_conflict, name="judge-conflict"),
    path("submissions/<int:submission_id>/comments/", views.judge_comment, name="judge-comment"),
    path("submissions/<int:submission_id>/artifacts/<int:measurement_id>/<str:filename>",
         views.judge_artifact, name="judge-artifact"),
]

participant_urlpatterns = [
    path("submissions/<int:submission_id>/thread/", views.participant_thread_reply, name="submission-thread"),
]

# The challenge's models page (organizers and judges), mounted at the site's root.
model_report_urlpatterns = [
    path("challenges/<slug:slug>/models/", model_reports.challenge_models, name="challenge-models"),
    path("challenges/<slug:slug>/models/audit/", model_reports.challenge_models_audit, name="challenge-models-audit"),
    path("challenges/<slug:slug>/models/<int:report_id>.csv", model_reports.challenge_model_report_csv,
         name="challenge-model-report-csv"),
    path("api/challenges/<slug:slug>/models/", model_reports.ChallengeModelsApi.as_view(), name="api-challenge-models"),
]
