from django.urls import path

from pipeline import views

urlpatterns = [
    path("organizer/workers/", views.worker_health, name="worker-health"),
]
