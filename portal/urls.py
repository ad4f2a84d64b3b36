from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("oauth.urls")),
    path("api/v1/", include("clients.api.urls")),
    path("admin/", admin.site.urls),
    # The customer portal (its own module: this file is the root URLconf).
    path("", include("portal.site_urls")),
]
