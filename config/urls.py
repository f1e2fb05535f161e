from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from django_ratelimit.decorators import ratelimit

from review.urls import participant_urlpatterns

urlpatterns = [
    path("", include("bounty.urls")),
    path("api/", include("bounty.api")),
    path("", include(participant_urlpatterns)),
    path("", include("pipeline.urls")),
    path("judge/", include("review.urls")),
    # Logins are rate-limited per client address; the rest of the auth views come from Django.
    path("accounts/login/", ratelimit(key="ip", rate=settings.RATE_LOGIN, method="POST", block=True)(
        LoginView.as_view()), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
