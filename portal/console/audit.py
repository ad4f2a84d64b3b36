"""The audit log, read-only: never added, changed or deleted here, not even by a superuser."""

from __future__ import annotations

from django.contrib import admin

from clients.models import AuditEvent
from portal.console.base import ReadOnlyAdmin, json_block


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit log: never added, changed or deleted, not even by a superuser."""

    list_display = (
        "time",
        "actor_display",
        "actor_type",
        "action",
        "target_type",
        "target_id",
        "organization_id",
        "client_id",
        "source_ip",
    )
    list_filter = ("action", "actor_type", "target_type", "time")
    search_fields = ("actor_display", "actor_id", "target_id", "organization_id", "client_id")
    date_hierarchy = "time"
    fields = (
        "time",
        "actor_type",
        "actor_id",
        "actor_display",
        "source_ip",
        "action",
        "target_type",
        "target_id",
        "organization_id",
        "client_id",
        "details_pretty",
    )
    readonly_fields = fields
    actions = None

    @admin.display(description="details")
    def details_pretty(self, obj: AuditEvent) -> str:
        return json_block(obj.details, sort_keys=True)
