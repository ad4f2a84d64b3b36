"""Members and invitations of an organization: everyone reads, only an owner changes them."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from clients import selectors, services
from clients.models import Membership
from portal.lib.once import nonce_issue, nonce_of
from portal.ui import forms
from portal.ui.tenancy import member_view
from portal.ui.views._common import actor_for, org_context


def _members_context(request: HttpRequest, member: Membership, **extra: object) -> dict:
    organization = member.organization
    return org_context(
        request,
        member,
        members=organization.memberships.select_related("user").order_by("create_time", "id"),
        invitations=organization.invitations.filter(accepted_time__isnull=True)[:50],
        roles=Membership.Role.choices,
        nonce=nonce_issue(),
        **extra,
    )


@require_GET
@member_view()
def members(request: HttpRequest, member: Membership) -> HttpResponse:
    context = _members_context(request, member, invite_form=forms.InviteForm())
    return render(request, "portal/members.html", context)


@require_POST
@member_view(manage_members=True)
def member_invite(request: HttpRequest, member: Membership) -> HttpResponse:
    form = forms.InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                actor=actor_for(request),
                organization=member.organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                form_token=nonce_of(request),
            )
        except services.AlreadySubmitted:
            messages.info(
                request, "This invitation was already sent (the form was submitted twice)."
            )
            return redirect("portal:members", org_id=member.organization_id)
        except ValidationError as exc:
            forms.add_service_errors(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("portal:members", org_id=member.organization_id)
    context = _members_context(request, member, invite_form=form)
    return render(request, "portal/members.html", context, status=400)


@require_POST
@member_view(manage_members=True)
def member_role(request: HttpRequest, member: Membership, membership_id: int) -> HttpResponse:
    target = selectors.member_get(member.organization, membership_id)
    form = forms.RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: owner, admin or viewer.")
    else:
        try:
            services.member_role_change(
                actor=actor_for(request), membership=target, role=form.cleaned_data["role"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, f"{target.user.get_username()} is now {target.get_role_display()}."
            )
    return redirect("portal:members", org_id=member.organization_id)


@require_POST
@member_view(manage_members=True)
def member_remove(request: HttpRequest, member: Membership, membership_id: int) -> HttpResponse:
    target = selectors.member_get(member.organization, membership_id)
    try:
        services.member_remove(actor=actor_for(request), membership=target)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:members", org_id=member.organization_id)
    messages.success(request, f"Removed {target.user.get_username()}.")
    if target.user_id == request.user.pk:
        return redirect("portal:home")
    return redirect("portal:members", org_id=member.organization_id)


def _on_invitation(
    request: HttpRequest,
    member: Membership,
    invitation_id: int,
    change: Callable[..., object],
    done: str,
) -> HttpResponse:
    """Apply ``change`` (a service) to an open invitation of this organization, say ``done``."""
    invitation = selectors.invitation_get(member.organization, invitation_id)
    try:
        change(actor=actor_for(request), invitation=invitation)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done.format(email=invitation.email))
    return redirect("portal:members", org_id=member.organization_id)


@require_POST
@member_view(manage_members=True)
def invitation_cancel(request: HttpRequest, member: Membership, invitation_id: int) -> HttpResponse:
    """Withdraw an open invitation: its link then says so."""
    return _on_invitation(
        request,
        member,
        invitation_id,
        services.invitation_cancel,
        "Cancelled the invitation of {email}.",
    )


@require_POST
@member_view(manage_members=True)
def invitation_resend(request: HttpRequest, member: Membership, invitation_id: int) -> HttpResponse:
    """Mail an open invitation again, with a fresh link."""
    return _on_invitation(
        request,
        member,
        invitation_id,
        services.invitation_resend,
        "Sent the invitation to {email} again.",
    )
