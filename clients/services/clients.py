"""API clients of an organization, and the environment's management clients."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from clients.conf import client_settings
from clients.models import (
    ApiClient,
    ClientSecret,
    Organization,
    new_client_id,
    new_management_client_id,
    quota_of,
    set_quota,
)
from clients.services._common import check_model, delete_once, form_claim, new_secret
from clients.services.audit import Actor, audit_client, audit_secret


@transaction.atomic
def client_create(
    *,
    actor: Actor,
    organization: Organization,
    name: str,
    description: str = "",
    scopes: list[str] | None = None,
    audience: list[str] | None = None,
    custom_claims: list[dict[str, str]] | None = None,
    expiry: int | None = None,
    form_token: str = "",
    dpop_bound_access_tokens: bool = False,
) -> tuple[ApiClient, str]:
    """Register a client with its first secret. Returns the client and the plain secret (once).

    ``form_token`` (the portal's one-time form) makes concurrent submissions register one
    client: the others raise ``AlreadySubmitted`` naming it.
    """
    client_id = new_client_id()
    form_claim(
        form_token, kind="client.create", organization_id=organization.pk, target_id=client_id
    )
    client = ApiClient(
        id=client_id,
        organization=organization,
        name=name,
        description=description or "",
        scopes=list(scopes or []),
        audience=list(audience or []),
        custom_claims=list(custom_claims or []),
        expiry=client_settings.TOKEN_EXPIRY_DEFAULT if expiry is None else expiry,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
    )
    check_model(client, exclude=["id"])
    client.save(force_insert=True)
    secret, plain = new_secret(client)
    audit_client(
        actor,
        "client.create",
        client,
        details={"name": client.name, "scopes": client.scopes, "audience": client.audience},
    )
    audit_secret(actor, "secret.create", secret)
    return client, plain


CLIENT_UPDATABLE_FIELDS = (
    "name",
    "description",
    "scopes",
    "audience",
    "custom_claims",
    "expiry",
    "dpop_bound_access_tokens",
    "token_quota",  # {"per_hour", "per_day", "mode"} or None: within the organization's caps
)


@transaction.atomic
def client_update(*, actor: Actor, client: ApiClient, **fields: Any) -> ApiClient:
    """Change the given fields of a client, keep the others."""
    unknown = set(fields) - set(CLIENT_UPDATABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["this field cannot be changed"] for name in sorted(unknown)})
    changes = {}
    for name, value in fields.items():
        if name == "token_quota":
            before = quota_of(client)
            set_quota(client, value)
            value = quota_of(client)
        else:
            before = getattr(client, name)
            setattr(client, name, value)
        if before != value:
            changes[name] = [before, value]
    check_model(client, exclude=["id"])
    client.save()
    # Before and after of each changed field, so the activity log can say what changed.
    audit_client(
        actor,
        "client.update",
        client,
        details={"changed": sorted(changes), "changes": dict(sorted(changes.items()))},
    )
    return client


@transaction.atomic
def client_delete(*, actor: Actor, client: ApiClient) -> bool:
    """Delete a client; its secrets go with it, so they stop working at once.

    False when it was gone already: a second or concurrent delete changes nothing and writes no
    event (the client row is deleted first, so of two concurrent deletes one finds nothing).
    """
    # Lock the row: the loser of two concurrent deletes waits, then finds it gone.
    if not ApiClient.objects.select_for_update().filter(pk=client.pk).exists():
        return False
    ClientSecret.objects.filter(client_id=client.pk).delete()
    if not delete_once(client):
        return False
    audit_client(actor, "client.delete", client, details={"name": client.name})
    return True


@transaction.atomic
def management_client_create(
    *, actor: Actor, name: str, description: str = "", form_token: str = ""
) -> tuple[ApiClient, str]:
    """An environment-level client for the management API (``skc_…``), in no organization."""
    client_id = new_management_client_id()
    form_claim(form_token, kind="management_client.create", organization_id="", target_id=client_id)
    client = ApiClient(
        id=client_id,
        organization=None,
        name=name,
        description=description,
        scopes=[client_settings.MANAGEMENT_SCOPE],
        audience=[client_settings.MANAGEMENT_AUDIENCE],
        expiry=client_settings.TOKEN_EXPIRY_DEFAULT,
    )
    check_model(client, exclude=["id", "organization"])
    client.save(force_insert=True)
    secret, plain = new_secret(client)
    audit_client(
        actor,
        "management_client.create",
        client,
        details={"name": name, "secret_id": secret.id},
    )
    return client, plain
