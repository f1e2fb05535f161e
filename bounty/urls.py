from django.urls import path

from bounty import views

urlpatterns = [
    path("", views.home, name="home"),
    path("challenges/<slug:slug>/", views.challenge_detail, name="challenge-detail"),
    path("challenges/<slug:slug>/submit/", views.challenge_submit, name="challenge-submit"),
    path("challenges/<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("submissions/", views.submission_list, name="submission-list"),
    path("submissions/<int:submission_id>/", views.submission_detail, name="submission-detail"),
    path("submissions/<int:submission_id>/status.json", views.submission_status, name="submission-status"),
    path("submissions/<int:submission_id>/logs/<str:stream>.txt", views.submission_log, name="submission-log"),
    path("submissions/<int:submission_id>/images/<str:name>.png", views.submission_artifact, name="submission-artifact"),
    path("submissions/<int:submission_id>/cancel/", views.submission_cancel, name="submission-cancel"),
    path("findings/<int:submission_id>/", views.finding_detail, name="finding-detail"),
    path("findings/<int:submission_id>/metrics.json", views.finding_metrics, name="finding-metrics"),
    path("findings/<int:submission_id>/images.zip", views.finding_image_set, name="finding-image-set"),
    path("findings/<int:submission_id>/bundle.zip", views.finding_bundle, name="finding-bundle"),
    path("findings/<int:submission_id>/avid.json", views.finding_avid, name="finding-avid"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/confirm/<str:uidb64>/<str:token>/", views.signup_confirm, name="signup-confirm"),
    path("accounts/notifications/", views.notification_settings, name="notification-settings"),
    path("teams/", views.team_list, name="team-list"),
    path("teams/<int:team_id>/members/", views.team_add_member, name="team-add-member"),
    path("teams/<int:team_id>/leave/", views.team_leave, name="team-leave"),
]
