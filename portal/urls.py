from django.contrib import admin
from django.urls import include, path

from portal import health, metrics

urlpatterns = [
    path("", include("oauth.urls")),
    path("api/v1/", include("clients.api.urls")),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # The customer portal (its own module: this file is the root URLconf).
    path("", include("portal.site_urls")),
]
