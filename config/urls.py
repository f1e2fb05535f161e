from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularSwaggerSplitView

from bounty import views as bounty_views
from pipeline.metrics import metrics_view
from review.urls import model_report_urlpatterns, participant_urlpatterns

urlpatterns = [
    path("", include("bounty.urls")),
    # Readable docs of /api/schema/: Swagger UI from static files, its init script a URL (no inline script).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/docs.html"),
         name="api-docs"),
    path("api/", include("bounty.api")),
    path("", include(participant_urlpatterns)),
    path("", include(model_report_urlpatterns)),
    path("", include("pipeline.urls")),
    path("judge/", include("review.urls")),
    # Login and password reset go through the platform's limiter; the rest of the auth views are Django's.
    path("accounts/login/", bounty_views.LoginView.as_view(), name="login"),
    path("accounts/password_reset/", bounty_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    # The admin's own login form would bypass that limiter: it sends people to the one above.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    # Prometheus: the platform's metrics and django-prometheus's (bearer token or loopback only).
    path("metrics", metrics_view, name="metrics"),
]
