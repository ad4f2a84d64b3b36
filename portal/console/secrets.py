"""Client secrets: the list by suffix and status, the deactivate/reactivate actions, revoking
(deleting) through the service, and the read-only inline on a client's page. Never the hash."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from clients import services
from clients.models import ClientSecret
from portal.console.base import ReadOnly, ServiceAdmin, staff_actor
from portal.console.dashboard import STALE_DAYS, stale_secrets


class SecretStatusFilter(admin.SimpleListFilter):
    """The effective status: an active secret past its expire_time is EXPIRED."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("ACTIVE", "Active"),
            ("INACTIVE", "Inactive"),
            ("EXPIRED", "Expired"),
            ("LEAKED", "Leaked"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        expired = Q(expire_time__isnull=False, expire_time__lte=now)
        if self.value() == "ACTIVE":
            return queryset.filter(status=ClientSecret.Status.ACTIVE).exclude(expired)
        if self.value() == "EXPIRED":
            return queryset.filter(expired, status=ClientSecret.Status.ACTIVE)
        if self.value() == "INACTIVE":
            return queryset.filter(status=ClientSecret.Status.INACTIVE)
        if self.value() == "LEAKED":
            return queryset.filter(status=ClientSecret.Status.LEAKED)
        return queryset


class StaleSecretFilter(admin.SimpleListFilter):
    title = f"unused for {STALE_DAYS} days"
    parameter_name = "stale"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(stale_secrets())
        if self.value() == "no":
            return queryset.exclude(stale_secrets())
        return queryset


class SecretColumns:
    """A secret as staff see it: its last characters and its effective status."""

    @admin.display(description="secret", ordering="secret_suffix")
    def suffix(self, obj: ClientSecret) -> str:
        return f"…{obj.secret_suffix}"

    @admin.display(description="status", ordering="status")
    def effective_status(self, obj: ClientSecret) -> str:
        return obj.effective_status


class ClientSecretInline(SecretColumns, ReadOnly, admin.TabularInline):
    """Secrets, read-only: suffix, status, times. Never the hash."""

    model = ClientSecret
    fields = ("id", "suffix", "effective_status", "create_time", "last_used_time", "expire_time")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    verbose_name_plural = "secrets (act on them from the secret's page)"


@admin.register(ClientSecret)
class ClientSecretAdmin(SecretColumns, ServiceAdmin):
    """Secrets by suffix and status; deactivate, reactivate or revoke (delete) them here."""

    list_display = (
        "suffix",
        "id",
        "client",
        "organization",
        "effective_status",
        "create_time",
        "last_used_time",
        "expire_time",
    )
    list_filter = (
        SecretStatusFilter,
        StaleSecretFilter,
        ("client__organization", admin.RelatedOnlyFieldListFilter),
        "create_time",
        "last_used_time",
    )
    search_fields = (
        "id",
        "secret_suffix",
        "client__id",
        "client__name",
        "client__organization__display_name",
        "client__organization__id",
        "client__organization__external_id",
    )
    list_select_related = ("client", "client__organization")
    fields = (
        "id",
        "client",
        "organization",
        "suffix",
        "effective_status",
        "create_time",
        "update_time",
        "last_used_time",
        "expire_time",
        "leak_url",
        "leak_source",
        "leak_time",
    )
    readonly_fields = fields
    actions = ("deactivate", "reactivate", "delete_selected")
    date_hierarchy = "create_time"

    @admin.display(description="organization", ordering="client__organization")
    def organization(self, obj: ClientSecret) -> Any:
        return obj.client.organization or "(management client)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a secret is made with its client, or by the portal and the API

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the page is read-only; status changes are the actions below

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("clients.change_clientsecret")

    def delete_model(self, request: HttpRequest, obj: ClientSecret) -> None:
        services.secret_delete(actor=staff_actor(request), secret=obj)

    def _set_status(self, request: HttpRequest, queryset: QuerySet, status: str) -> None:
        actor = staff_actor(request)
        count = 0
        leaked = 0
        for secret in queryset.select_related("client"):
            if secret.status == ClientSecret.Status.LEAKED:
                leaked += 1  # a leaked secret stays revoked (secret_set_status refuses)
                continue
            services.secret_set_status(actor=actor, secret=secret, status=status)
            count += 1
        self.message_user(request, f"{count} secret(s) now {status.lower()}.")
        if leaked:
            self.message_user(
                request,
                f"{leaked} leaked secret(s) left as they are: a leaked secret cannot be "
                "reactivated or deactivated; delete it instead.",
                level=messages.WARNING,
            )

    @admin.action(description="Deactivate selected secrets", permissions=["revoke"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, ClientSecret.Status.INACTIVE)

    @admin.action(description="Reactivate selected secrets", permissions=["revoke"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, ClientSecret.Status.ACTIVE)
