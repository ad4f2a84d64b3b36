"""The organization's activity page: its audit events as sentences, newest first, filtered by
client, person, kind and days, fifty to a page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from clients import activity, selectors
from clients.models import Membership
from portal.ui import forms
from portal.ui.tenancy import member_view
from portal.ui.views._common import org_context, page_of

EVENTS_PER_PAGE = 50
FILTERS = ("client", "person", "kind", "since", "until")


@require_GET
@member_view()
def audit_log(request: HttpRequest, member: Membership) -> HttpResponse:
    organization = member.organization
    members = list(organization.memberships.select_related("user").order_by("create_time", "id"))
    bound = any(request.GET.get(name) for name in FILTERS)
    form = forms.AuditFilterForm(request.GET if bound else None, members=members)
    form.is_valid()
    events = page_of(request, selectors.audit_list(organization, **form.filters()), EVENTS_PER_PAGE)
    clients = list(selectors.client_list(organization).only("id", "name"))
    names = {c.id: c.name for c in clients}
    for event in events:
        event.sentence = activity.event_sentence(event, names)
    # The pager's links keep the filters.
    kept = urlencode({name: request.GET[name] for name in FILTERS if request.GET.get(name)})
    context = org_context(
        request,
        member,
        events=events,
        clients=clients,
        filter_form=form,
        client_filter=form.filters()["client_id"],
        filtered=bound,
        pager_extra=f"&{kept}" if kept else "",
    )
    template = "portal/audit_log.html"
    if request.htmx and request.htmx.target == "audit-table":
        template += "#audit-table"
    return render(request, template, context)
