"""The organization's activity page: its audit events, newest first, filtered by client."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from clients import selectors
from clients.models import Membership
from portal.ui.tenancy import member_view
from portal.ui.views._common import org_context, page_of

EVENTS_PER_PAGE = 50


@require_GET
@member_view()
def audit_log(request: HttpRequest, member: Membership) -> HttpResponse:
    client_id = request.GET.get("client", "").strip()[:32]
    events = page_of(request, selectors.audit_list(member.organization, client_id), EVENTS_PER_PAGE)
    clients = selectors.client_list(member.organization).only("id", "name")
    context = org_context(request, member, events=events, clients=clients, client_filter=client_id)
    template = "portal/audit_log.html"
    if request.htmx and request.htmx.target == "audit-table":
        template += "#audit-table"
    return render(request, template, context)
