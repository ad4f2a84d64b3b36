"""The API catalog as the organization sees it: which APIs its clients may be granted, and each
API's scopes with what they allow. Read by every member; changed only by the provider's staff."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from clients import services
from clients.models import Membership
from portal.ui.tenancy import member_view
from portal.ui.views._common import org_context


@require_GET
@member_view()
def catalog(request: HttpRequest, member: Membership) -> HttpResponse:
    apis = services.catalog_for(member.organization)
    return render(request, "portal/catalog.html", org_context(request, member, apis=apis))
