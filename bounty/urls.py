from django.urls import path

from bounty import views

urlpatterns = [
    path("", views.home, name="home"),
    path("challenges/<slug:slug>/", views.challenge_detail, name="challenge-detail"),
    path("challenges/<slug:slug>/submit/", views.challenge_submit, name="challenge-submit"),
    path("challenges/<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("submissions/<int:submission_id>/", views.submission_detail, name="submission-detail"),
    path("submissions/<int:submission_id>/cancel/", views.submission_cancel, name="submission-cancel"),
    path("findings/<int:submission_id>/", views.finding_detail, name="finding-detail"),
]
