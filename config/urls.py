from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("bounty.urls")),
    path("api/", include("bounty.api")),
    path("judge/", include("grading.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
