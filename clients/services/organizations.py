"""Organizations: create, rename, delete."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clients.conf import client_settings
from clients.models import Organization, quota_of, set_quota
from clients.services._common import check_model
from clients.services.audit import Actor, audit_organization

_EXTERNAL_ID_TAKEN = "an organization with this external_id exists"


@transaction.atomic
def organization_create(
    *, actor: Actor, display_name: str, external_id: str | None = None
) -> Organization:
    """A customer's organization. ``external_id``, the provider's own reference, is unique."""
    organization = Organization(
        display_name=display_name,
        external_id=external_id or None,
        token_quota_per_hour=client_settings.TOKEN_QUOTA_DEFAULT_PER_HOUR,
        token_quota_per_day=client_settings.TOKEN_QUOTA_DEFAULT_PER_DAY,
        token_quota_mode=client_settings.TOKEN_QUOTA_DEFAULT_MODE,
    )
    check_model(organization)
    if external_id and Organization.objects.filter(external_id=external_id).exists():
        raise ValidationError({"external_id": [_EXTERNAL_ID_TAKEN]})
    try:
        with transaction.atomic():
            organization.save(force_insert=True)
    except IntegrityError as exc:
        raise ValidationError({"external_id": [_EXTERNAL_ID_TAKEN]}) from exc
    audit_organization(
        actor,
        "organization.create",
        organization,
        details={"display_name": display_name, "external_id": external_id or None},
    )
    return organization


@transaction.atomic
def organization_update(
    *,
    actor: Actor,
    organization: Organization,
    display_name: str | None = None,
    external_id: Any = ...,
    on_leak: str | None = None,
    secret_max_lifetime_days: Any = ...,
    token_quota: Any = ...,
) -> Organization:
    """Change what is given: ``external_id=None`` (or "") clears it; left out, it stays.
    ``secret_max_lifetime_days=None`` lifts the organization's own limit (the provider's cap,
    OAUTH["SECRET_MAX_LIFETIME_DAYS_CAP"], still applies; a value above it is refused).
    ``token_quota``: ``{"per_hour", "per_day", "mode"}`` or None (no quota): the provider's caps
    (the organization's own clients' quotas stay within them)."""
    changed: dict[str, Any] = {}
    changes: dict[str, list[Any]] = {}
    if on_leak is not None:
        if on_leak not in Organization.OnLeak.values:
            raise ValidationError(
                {"on_leak": [f"on_leak must be one of {Organization.OnLeak.values}"]}
            )
        if organization.on_leak != on_leak:
            changes["on_leak"] = [organization.on_leak, on_leak]
        organization.on_leak = on_leak
        changed["on_leak"] = on_leak
    if secret_max_lifetime_days is not ...:
        days = secret_max_lifetime_days
        cap = client_settings.SECRET_MAX_LIFETIME_DAYS_CAP
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
            raise ValidationError(
                {"secret_max_lifetime_days": ["must be a positive number of days, or null"]}
            )
        if days is not None and cap is not None and days > cap:
            raise ValidationError(
                {"secret_max_lifetime_days": [f"the provider allows at most {cap} days"]}
            )
        if organization.secret_max_lifetime_days != days:
            changes["secret_max_lifetime_days"] = [organization.secret_max_lifetime_days, days]
        organization.secret_max_lifetime_days = days
        changed["secret_max_lifetime_days"] = days
    if token_quota is not ...:
        before = quota_of(organization)
        set_quota(organization, token_quota)
        if quota_of(organization) != before:
            changes["token_quota"] = [before, quota_of(organization)]
        changed["token_quota"] = quota_of(organization)
    if display_name is not None:
        if organization.display_name != display_name:
            changes["display_name"] = [organization.display_name, display_name]
        organization.display_name = display_name
        changed["display_name"] = display_name
    if external_id is not ...:
        if organization.external_id != (external_id or None):
            changes["external_id"] = [organization.external_id, external_id or None]
        organization.external_id = external_id or None
        changed["external_id"] = external_id or None
    check_model(organization)
    if organization.external_id and (
        Organization.objects.filter(external_id=organization.external_id)
        .exclude(pk=organization.pk)
        .exists()
    ):
        raise ValidationError({"external_id": [_EXTERNAL_ID_TAKEN]})
    organization.save()
    audit_organization(
        actor, "organization.update", organization, details={**changed, "changes": changes}
    )
    return organization


@transaction.atomic
def organization_delete(*, actor: Actor, organization: Organization) -> None:
    """Delete an organization with its clients (and their credentials), members, invitations."""
    client_ids = list(organization.clients.values_list("id", flat=True))
    # Audited first: delete() clears the instance's id.
    audit_organization(
        actor, "organization.delete", organization, details={"deleted_clients": client_ids}
    )
    organization.delete()
