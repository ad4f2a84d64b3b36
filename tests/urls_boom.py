"""A test-only URLconf: the site, plus a view that fails (never routed in production)."""

from django.urls import path

from portal.urls import urlpatterns as site


def boom(request):
    raise RuntimeError("internal detail: db password is hunter2")


urlpatterns = [path("boom", boom), *site]
