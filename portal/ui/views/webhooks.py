"""Webhooks in the portal: the organization's endpoints (add, edit, disable, delete), a signing
secret shown once (at creation and rotation), a test event, and each endpoint's recent
deliveries with "retry now". Owners and admins manage; viewers read."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from clients import selectors, services
from clients.models import Membership, WebhookEndpoint
from portal.ui import forms
from portal.ui.tenancy import member_view
from portal.ui.views._common import actor_for, org_context

RECENT_DELIVERIES = 25


def _list_url(member: Membership) -> str:
    return reverse("portal:webhooks", args=[member.organization_id])


def _detail_url(member: Membership, endpoint: WebhookEndpoint) -> str:
    return reverse("portal:webhook-detail", args=[member.organization_id, endpoint.id])


def _secret_page(
    request: HttpRequest, member: Membership, endpoint: WebhookEndpoint, secret: str, created: bool
) -> HttpResponse:
    """The only response that holds the signing secret: never cached, never stored."""
    context = org_context(
        request,
        member,
        section="webhooks",
        endpoint=endpoint,
        signing_secret=secret,
        created=created,
        detail_url=_detail_url(member, endpoint),
    )
    response = render(request, "portal/webhook_secret.html", context)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


@require_http_methods(["GET", "POST"])
@member_view()
def webhooks(request: HttpRequest, member: Membership) -> HttpResponse:
    """The endpoints, and (owners, admins) the form that adds one."""
    form = forms.WebhookForm()
    status = 200
    if request.method == "POST":
        if not member.can_manage_clients:
            return HttpResponse("your role in this organization is read-only", status=403)
        form = forms.WebhookForm(request.POST)
        if form.is_valid():
            try:
                endpoint, secret = services.webhook_endpoint_create(
                    actor=actor_for(request), organization=member.organization, **form.cleaned_data
                )
            except ValidationError as exc:
                forms.add_service_errors(form, exc)
            else:
                return _secret_page(request, member, endpoint, secret, created=True)
        status = 400
    context = org_context(
        request,
        member,
        section="webhooks",
        endpoints=selectors.webhook_endpoints_of(member.organization),
        form=form,
    )
    return render(request, "portal/webhooks.html", context, status=status)


@require_http_methods(["GET", "POST"])
@member_view()
def webhook_detail(request: HttpRequest, member: Membership, endpoint_id: str) -> HttpResponse:
    """One endpoint: its settings (a form for owners and admins) and its recent deliveries."""
    endpoint = selectors.webhook_endpoint_get(member.organization, endpoint_id)
    status = 200
    if request.method == "POST":
        if not member.can_manage_clients:
            return HttpResponse("your role in this organization is read-only", status=403)
        form = forms.WebhookForm(request.POST)
        if form.is_valid():
            try:
                services.webhook_endpoint_update(
                    actor=actor_for(request), endpoint=endpoint, **form.cleaned_data
                )
            except ValidationError as exc:
                forms.add_service_errors(form, exc)
            else:
                messages.success(request, "Saved the webhook endpoint.")
                return redirect(_detail_url(member, endpoint))
        status = 400
    else:
        form = forms.WebhookForm(
            initial={
                "url": endpoint.url,
                "event_types": endpoint.event_types,
                "description": endpoint.description,
                "enabled": endpoint.enabled,
            }
        )
    deliveries = list(selectors.webhook_deliveries_of(endpoint)[:RECENT_DELIVERIES])
    context = org_context(
        request, member, section="webhooks", endpoint=endpoint, form=form, deliveries=deliveries
    )
    return render(request, "portal/webhook_detail.html", context, status=status)


@require_POST
@member_view(manage_clients=True)
def webhook_rotate(request: HttpRequest, member: Membership, endpoint_id: str) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(member.organization, endpoint_id)
    secret = services.webhook_endpoint_rotate_secret(actor=actor_for(request), endpoint=endpoint)
    return _secret_page(request, member, endpoint, secret, created=False)


@require_POST
@member_view(manage_clients=True)
def webhook_test(request: HttpRequest, member: Membership, endpoint_id: str) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(member.organization, endpoint_id)
    event = services.webhook_endpoint_test(actor=actor_for(request), endpoint=endpoint)
    messages.success(
        request, f"Sent a test event ({event.id}); its delivery appears below in a moment."
    )
    return redirect(_detail_url(member, endpoint))


@require_POST
@member_view(manage_clients=True)
def webhook_delete(request: HttpRequest, member: Membership, endpoint_id: str) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(member.organization, endpoint_id)
    services.webhook_endpoint_delete(actor=actor_for(request), endpoint=endpoint)
    messages.success(request, f"Deleted the webhook endpoint {endpoint.url}.")
    return redirect(_list_url(member))


@require_POST
@member_view(manage_clients=True)
def webhook_retry(
    request: HttpRequest, member: Membership, endpoint_id: str, delivery_id: str
) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(member.organization, endpoint_id)
    delivery = selectors.webhook_delivery_get(endpoint, delivery_id)
    services.webhook_delivery_retry(actor=actor_for(request), delivery=delivery)
    messages.success(request, f"Delivering {delivery.event_id} again now.")
    return redirect(_detail_url(member, endpoint))
