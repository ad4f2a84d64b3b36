"""Organizations: create, rename, delete."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clients.models import Organization
from clients.services._common import check_model
from clients.services.audit import Actor, audit_record


@transaction.atomic
def organization_create(
    *, actor: Actor, display_name: str, external_id: str | None = None
) -> Organization:
    organization = Organization(display_name=display_name, external_id=external_id or None)
    check_model(organization)
    if external_id and Organization.objects.filter(external_id=external_id).exists():
        raise ValidationError({"external_id": ["an organization with this external_id exists"]})
    try:
        with transaction.atomic():
            organization.save(force_insert=True)
    except IntegrityError as exc:
        raise ValidationError(
            {"external_id": ["an organization with this external_id exists"]}
        ) from exc
    audit_record(
        actor=actor,
        action="organization.create",
        target_type="organization",
        target_id=organization.id,
        organization_id=organization.id,
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
) -> Organization:
    changed: dict[str, Any] = {}
    if display_name is not None:
        organization.display_name = display_name
        changed["display_name"] = display_name
    if external_id is not ...:
        organization.external_id = external_id or None
        changed["external_id"] = external_id or None
    check_model(organization)
    if organization.external_id and (
        Organization.objects.filter(external_id=organization.external_id)
        .exclude(pk=organization.pk)
        .exists()
    ):
        raise ValidationError({"external_id": ["an organization with this external_id exists"]})
    organization.save()
    audit_record(
        actor=actor,
        action="organization.update",
        target_type="organization",
        target_id=organization.id,
        organization_id=organization.id,
        details=changed,
    )
    return organization


@transaction.atomic
def organization_delete(*, actor: Actor, organization: Organization) -> None:
    organization_id = organization.id
    client_ids = list(organization.clients.values_list("id", flat=True))
    organization.delete()
    audit_record(
        actor=actor,
        action="organization.delete",
        target_type="organization",
        target_id=organization_id,
        organization_id=organization_id,
        details={"deleted_clients": client_ids},
    )
