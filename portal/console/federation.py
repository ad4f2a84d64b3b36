"""Trust policies in the staff console (workload identity federation): which external workload
tokens get which client's tokens. Read-only, with one audited action: removal, through the same
service as the portal and the management API (a policy that lets the wrong workload in is an
incident; changing one is the customer's job, in the portal or the API)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from clients.models import TrustPolicy
from clients.services import trust_policy_delete
from portal.console.base import ReadOnlyAdmin, json_block, staff_actor


@admin.register(TrustPolicy)
class TrustPolicyAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "issuer", "subject", "client", "max_token_age", "update_time")
    list_filter = ("issuer", "create_time")
    search_fields = ("id", "name", "issuer", "subject", "client__id", "client__organization__id")
    list_select_related = ("client",)
    fields = (
        "id",
        "client",
        "name",
        "issuer",
        "audience",
        "subject",
        "conditions_pretty",
        "max_token_age",
        "jwks_pretty",
        "create_time",
        "update_time",
    )
    readonly_fields = fields
    actions = ["remove_policies"]

    @admin.display(description="claim conditions")
    def conditions_pretty(self, obj: TrustPolicy) -> str:
        return json_block(obj.claim_conditions)

    @admin.display(description="static JWKS")
    def jwks_pretty(self, obj: TrustPolicy) -> str:
        return json_block(obj.jwks) if obj.jwks is not None else "— (the issuer's discovery)"

    def get_actions(self, request: HttpRequest) -> dict:
        # ReadOnlyAdmin denies delete; this action is the audited way to remove a policy.
        actions = super().get_actions(request)
        if not request.user.has_perm("clients.delete_trustpolicy"):
            actions.pop("remove_policies", None)
        return actions

    @admin.action(description="Remove the selected trust policies (their workloads fail at once)")
    def remove_policies(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not request.user.has_perm("clients.delete_trustpolicy"):
            raise PermissionDenied
        actor = staff_actor(request)
        count = 0
        for policy in queryset.select_related("client"):
            trust_policy_delete(actor=actor, policy=policy)
            count += 1
        self.message_user(request, f"Removed {count} trust policy(ies).", messages.SUCCESS)
