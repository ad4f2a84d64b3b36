from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from portal.serving import errors, health, metrics

# Refusals Django makes before any view (a Host outside ALLOWED_HOSTS, …), in each face's format.
handler400 = errors.bad_request

urlpatterns = [
    path("", include("oauth.urls")),
    path("api/v1/", include("portal.api.urls")),
    # Staff console pages of models that moved between apps keep their old addresses.
    re_path(
        r"^admin/oauth/clientkey/(?P<rest>.*)$",
        RedirectView.as_view(url="/admin/clients/clientkey/%(rest)s", query_string=True),
    ),
    re_path(
        r"^admin/clients/tokenstat/(?P<rest>.*)$",
        RedirectView.as_view(url="/admin/oauth/tokenstat/%(rest)s", query_string=True),
    ),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # The customer portal (its own module: this file is the root URLconf).
    path("", include("portal.ui.urls")),
]
