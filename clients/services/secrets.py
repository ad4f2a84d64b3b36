"""Client secrets: add, deactivate, delete (rotation and incident response)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clients.conf import client_settings
from clients.models import ApiClient, ClientSecret
from clients.services._common import delete_once, form_claim, new_secret
from clients.services.audit import Actor, audit_secret


@transaction.atomic
def secret_add(
    *,
    actor: Actor,
    client: ApiClient,
    expire_time: datetime | None = None,
    form_token: str = "",
) -> tuple[ClientSecret, str]:
    """Add a secret (rotation step one). At most MAX_SECRETS_PER_CLIENT per client.

    ``form_token`` (the portal's one-time form): concurrent submissions add one secret.
    """
    form_claim(
        form_token,
        kind="secret.create",
        organization_id=client.organization_id or "",
        target_id=client.pk,
    )
    # Lock the client row so that two concurrent adds cannot both pass the limit check.
    locked = ApiClient.objects.select_for_update().filter(pk=client.pk).first()
    if locked is None:
        raise ApiClient.DoesNotExist("client was deleted")
    limit = client_settings.MAX_SECRETS_PER_CLIENT
    if ClientSecret.objects.filter(client_id=client.pk).count() >= limit:
        raise ValidationError(
            f"a client holds at most {limit} secrets; delete one first", code="limit"
        )
    if expire_time is not None and expire_time <= timezone.now():
        raise ValidationError({"expire_time": ["expire_time must be in the future"]})
    secret, plain = new_secret(client, expire_time=expire_time)
    audit_secret(
        actor,
        "secret.create",
        secret,
        details={"expire_time": expire_time.isoformat() if expire_time else None},
    )
    return secret, plain


def expire_time_from_seconds(seconds: int) -> datetime:
    """A secret's ``expire_time``, ``seconds`` from now (the API takes a lifetime)."""
    return timezone.now() + timedelta(seconds=seconds)


@transaction.atomic
def secret_set_status(*, actor: Actor, secret: ClientSecret, status: str) -> ClientSecret:
    """Deactivate (or reactivate) a secret: an inactive secret is refused at once."""
    settable = [ClientSecret.Status.ACTIVE, ClientSecret.Status.INACTIVE]
    if status not in settable:
        raise ValidationError({"status": [f"status must be one of {settable}"]})
    # A leaked secret stays revoked: no face (portal, API, admin) can make it usable again.
    current = ClientSecret.objects.select_for_update().filter(pk=secret.pk).first()
    if current is not None and current.status == ClientSecret.Status.LEAKED:
        raise ValidationError(
            {"status": ["this secret was leaked; it cannot be reactivated. Add a new secret."]},
            code="leaked",
        )
    updated = ClientSecret.objects.filter(pk=secret.pk).update(
        status=status, update_time=timezone.now()
    )
    if not updated:
        raise ClientSecret.DoesNotExist("secret was deleted")
    secret.refresh_from_db()
    audit_secret(
        actor,
        "secret.deactivate" if status == ClientSecret.Status.INACTIVE else "secret.activate",
        secret,
    )
    return secret


@transaction.atomic
def secret_delete(*, actor: Actor, secret: ClientSecret) -> None:
    """Revoke a secret for good (rotation's last step). A second delete is a clean no-op."""
    if delete_once(secret):
        audit_secret(actor, "secret.delete", secret)


@transaction.atomic
def secrets_revoke_all(*, actor: Actor, client: ApiClient) -> int:
    """Delete every secret of a client (incident response)."""
    secrets = list(ClientSecret.objects.filter(client_id=client.pk))
    for secret in secrets:
        secret_delete(actor=actor, secret=secret)
    return len(secrets)
