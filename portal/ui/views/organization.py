"""The organization's settings: what a leaked secret's report does, and the longest a new
secret may live. Everyone reads them; only an owner changes them."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from clients import services
from clients.conf import client_settings
from clients.models import Membership
from portal.ui import forms
from portal.ui.tenancy import member_view
from portal.ui.views._common import actor_for, org_context


def _form(member: Membership, data: object = None) -> forms.OrganizationSettingsForm:
    organization = member.organization
    return forms.OrganizationSettingsForm(
        data,
        initial={
            "on_leak": organization.on_leak,
            "secret_max_lifetime_days": organization.secret_max_lifetime_days,
        },
        cap=client_settings.SECRET_MAX_LIFETIME_DAYS_CAP,
    )


def _render(request: HttpRequest, member: Membership, form: object, status: int = 200):
    context = org_context(
        request,
        member,
        form=form,
        cap=client_settings.SECRET_MAX_LIFETIME_DAYS_CAP,
        effective_days=member.organization.effective_secret_lifetime_days,
    )
    return render(request, "portal/organization_settings.html", context, status=status)


@require_GET
@member_view()
def organization_settings(request: HttpRequest, member: Membership) -> HttpResponse:
    return _render(request, member, _form(member))


@require_POST
@member_view(manage_members=True)
def organization_settings_update(request: HttpRequest, member: Membership) -> HttpResponse:
    form = _form(member, request.POST)
    if form.is_valid():
        try:
            services.organization_update(
                actor=actor_for(request),
                organization=member.organization,
                on_leak=form.cleaned_data["on_leak"],
                secret_max_lifetime_days=form.cleaned_data["secret_max_lifetime_days"],
            )
        except ValidationError as exc:
            forms.add_service_errors(form, exc)
        else:
            messages.success(request, "Saved the organization's settings.")
            return redirect("portal:organization-settings", org_id=member.organization_id)
    return _render(request, member, form, status=400)
