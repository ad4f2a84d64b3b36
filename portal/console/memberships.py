"""Memberships: their own list, the inlines on organizations and users, and the one function
that applies a membership formset through the member services (adding, re-roling, removing)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from clients import services
from clients.models import Membership
from portal.console.base import ServiceAdmin, copy_fields, staff_actor


def save_memberships(request: HttpRequest, formset: Any) -> None:
    """Apply a membership formset through the member services."""
    actor = staff_actor(request)
    formset.save(commit=False)  # computes new/changed/deleted objects, writes nothing
    for membership in formset.deleted_objects:
        services.member_remove(actor=actor, membership=membership)
    for membership, changed in formset.changed_objects:
        if set(changed) - {"role"}:
            raise ValidationError(
                "a membership's user and organization cannot change; remove it and add another"
            )
        services.member_role_change(actor=actor, membership=membership, role=membership.role)
    for membership in formset.new_objects:
        services.member_add(
            actor=actor,
            user=membership.user,
            organization=membership.organization,
            role=membership.role,
        )


class MembershipInline(admin.TabularInline):
    model = Membership
    readonly_fields = ("create_time",)
    extra = 0


class OrganizationMembershipInline(MembershipInline):
    fields = ("user", "role", "create_time")
    autocomplete_fields = ("user",)
    verbose_name = "member"


class UserMembershipInline(MembershipInline):
    fields = ("organization", "role", "create_time")
    autocomplete_fields = ("organization",)
    verbose_name = "organization membership"


@admin.register(Membership)
class MembershipAdmin(ServiceAdmin):
    list_display = ("user", "organization", "role", "create_time")
    list_filter = ("role", "organization", "create_time")
    search_fields = (
        "user__username",
        "user__email",
        "organization__display_name",
        "organization__id",
        "organization__external_id",
    )
    list_select_related = ("user", "organization")
    autocomplete_fields = ("user", "organization")
    date_hierarchy = "create_time"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Only the role changes; moving a membership is a remove and an add.
        return ("user", "organization", "create_time") if obj else ("create_time",)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        actor = staff_actor(request)
        if change:
            current = Membership.objects.get(pk=obj.pk)
            copy_fields(
                obj, services.member_role_change(actor=actor, membership=current, role=obj.role)
            )
        else:
            created = services.member_add(
                actor=actor, user=obj.user, organization=obj.organization, role=obj.role
            )
            copy_fields(obj, created)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.member_remove(actor=staff_actor(request), membership=obj)
