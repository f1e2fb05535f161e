from django.urls import path

from grading import views

urlpatterns = [
    path("", views.judge_queue, name="judge-queue"),
    path("submissions/<int:submission_id>/publish/", views.judge_publish, name="judge-publish"),
]
