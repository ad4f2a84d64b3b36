"""Every state change of organizations, clients and secrets, with its audit event.

The portal, the management API and the admin all call these functions, so each
rule lives in one place. Functions are keyword-only and atomic; they raise
``django.core.exceptions.ValidationError`` for bad input and change nothing then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from clients.models import (
    ApiClient,
    AuditEvent,
    ClientSecret,
    Organization,
    hash_secret,
    make_plain_secret,
    new_client_id,
    new_management_client_id,
)
from oauth.jwk import JWKError, parse_public_jwk
from oauth.models import ClientKey, RevokedToken


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a portal user, a management client, or the system (commands)."""

    type: str  # "user" | "client" | "system"
    id: str = ""
    display: str = ""
    ip: str | None = None

    @classmethod
    def system(cls, display: str = "system") -> Actor:
        return cls(type="system", display=display)

    @classmethod
    def for_user(cls, user: Any, ip: str | None = None) -> Actor:
        return cls(type="user", id=str(user.pk), display=user.get_username(), ip=ip)

    @classmethod
    def for_client(cls, client_id: str, ip: str | None = None) -> Actor:
        return cls(type="client", id=client_id, display=client_id, ip=ip)


def audit_record(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    organization_id: str | None = None,
    client_id: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Write one audit event. Called by every service below, never by a view."""
    return AuditEvent.objects.create(
        actor_type=actor.type,
        actor_id=actor.id,
        actor_display=actor.display,
        organization_id=organization_id or "",
        action=action,
        target_type=target_type,
        target_id=target_id,
        client_id=client_id,
        source_ip=actor.ip,
        details=details or {},
    )


def _check_model(instance: Any, exclude: list[str] | None = None) -> None:
    instance.full_clean(exclude=exclude, validate_unique=False)


# --- Organizations -------------------------------------------------------------------------------


@transaction.atomic
def organization_create(
    *, actor: Actor, display_name: str, external_id: str | None = None
) -> Organization:
    organization = Organization(display_name=display_name, external_id=external_id or None)
    _check_model(organization)
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
    _check_model(organization)
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


# --- Clients -------------------------------------------------------------------------------------


def _new_secret(client: ApiClient, expire_time: datetime | None = None) -> tuple[ClientSecret, str]:
    plain = make_plain_secret()
    secret = ClientSecret.objects.create(
        client=client,
        secret_hash=hash_secret(plain),
        secret_suffix=plain[-4:],
        expire_time=expire_time,
    )
    return secret, plain


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
) -> tuple[ApiClient, str]:
    """Register a client with its first secret. Returns the client and the plain secret (once)."""
    client = ApiClient(
        id=new_client_id(),
        organization=organization,
        name=name,
        description=description or "",
        scopes=list(scopes or []),
        audience=list(audience or []),
        custom_claims=list(custom_claims or []),
        expiry=settings.OAUTH["TOKEN_EXPIRY_DEFAULT"] if expiry is None else expiry,
    )
    _check_model(client, exclude=["id"])
    client.save(force_insert=True)
    secret, plain = _new_secret(client)
    audit_record(
        actor=actor,
        action="client.create",
        target_type="client",
        target_id=client.id,
        organization_id=organization.id,
        client_id=client.id,
        details={"name": client.name, "scopes": client.scopes, "audience": client.audience},
    )
    audit_record(
        actor=actor,
        action="secret.create",
        target_type="secret",
        target_id=secret.id,
        organization_id=organization.id,
        client_id=client.id,
        details={"secret_suffix": secret.secret_suffix},
    )
    return client, plain


CLIENT_UPDATABLE_FIELDS = ("name", "description", "scopes", "audience", "custom_claims", "expiry")


@transaction.atomic
def client_update(*, actor: Actor, client: ApiClient, **fields: Any) -> ApiClient:
    """Change the given fields of a client, keep the others."""
    unknown = set(fields) - set(CLIENT_UPDATABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["this field cannot be changed"] for name in sorted(unknown)})
    changed = {}
    for name, value in fields.items():
        if getattr(client, name) != value:
            changed[name] = value
        setattr(client, name, value)
    _check_model(client, exclude=["id"])
    client.save()
    audit_record(
        actor=actor,
        action="client.update",
        target_type="client",
        target_id=client.id,
        organization_id=client.organization_id,
        client_id=client.id,
        details={"changed": sorted(changed)},
    )
    return client


@transaction.atomic
def client_delete(*, actor: Actor, client: ApiClient) -> None:
    """Delete a client; its secrets go with it, so they stop working at once."""
    client_id, organization_id = client.id, client.organization_id
    # Deleting by query (not instance.delete()) makes a concurrent second delete a clean no-op.
    ClientSecret.objects.filter(client_id=client_id).delete()
    ApiClient.objects.filter(pk=client_id).delete()
    audit_record(
        actor=actor,
        action="client.delete",
        target_type="client",
        target_id=client_id,
        organization_id=organization_id,
        client_id=client_id,
        details={"name": client.name},
    )


@transaction.atomic
def management_client_create(
    *, actor: Actor, name: str, description: str = ""
) -> tuple[ApiClient, str]:
    """An environment-level client for the management API (``skc_…``), in no organization."""
    oauth = settings.OAUTH
    client = ApiClient(
        id=new_management_client_id(),
        organization=None,
        name=name,
        description=description,
        scopes=[oauth["MANAGEMENT_SCOPE"]],
        audience=[oauth["MANAGEMENT_AUDIENCE"]],
        expiry=oauth["TOKEN_EXPIRY_DEFAULT"],
    )
    _check_model(client, exclude=["id", "organization"])
    client.save(force_insert=True)
    secret, plain = _new_secret(client)
    audit_record(
        actor=actor,
        action="management_client.create",
        target_type="client",
        target_id=client.id,
        client_id=client.id,
        details={"name": name, "secret_id": secret.id},
    )
    return client, plain


# --- Secrets -------------------------------------------------------------------------------------


@transaction.atomic
def secret_add(
    *, actor: Actor, client: ApiClient, expire_time: datetime | None = None
) -> tuple[ClientSecret, str]:
    """Add a secret (rotation step one). At most MAX_SECRETS_PER_CLIENT per client."""
    # Lock the client row so that two concurrent adds cannot both pass the limit check.
    locked = ApiClient.objects.select_for_update().filter(pk=client.pk).first()
    if locked is None:
        raise ApiClient.DoesNotExist("client was deleted")
    limit = settings.OAUTH["MAX_SECRETS_PER_CLIENT"]
    if ClientSecret.objects.filter(client_id=client.pk).count() >= limit:
        raise ValidationError(
            f"a client holds at most {limit} secrets; delete one first", code="limit"
        )
    if expire_time is not None and expire_time <= timezone.now():
        raise ValidationError({"expire_time": ["expire_time must be in the future"]})
    secret, plain = _new_secret(client, expire_time=expire_time)
    audit_record(
        actor=actor,
        action="secret.create",
        target_type="secret",
        target_id=secret.id,
        organization_id=client.organization_id,
        client_id=client.id,
        details={
            "secret_suffix": secret.secret_suffix,
            "expire_time": expire_time.isoformat() if expire_time else None,
        },
    )
    return secret, plain


def expire_time_from_seconds(seconds: int) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


@transaction.atomic
def secret_set_status(*, actor: Actor, secret: ClientSecret, status: str) -> ClientSecret:
    """Deactivate (or reactivate) a secret: an inactive secret is refused at once."""
    if status not in ClientSecret.Status.values:
        raise ValidationError({"status": [f"status must be one of {ClientSecret.Status.values}"]})
    updated = ClientSecret.objects.filter(pk=secret.pk).update(
        status=status, update_time=timezone.now()
    )
    if not updated:
        raise ClientSecret.DoesNotExist("secret was deleted")
    secret.refresh_from_db()
    audit_record(
        actor=actor,
        action="secret.deactivate" if status == ClientSecret.Status.INACTIVE else "secret.activate",
        target_type="secret",
        target_id=secret.id,
        organization_id=secret.client.organization_id,
        client_id=secret.client_id,
        details={"secret_suffix": secret.secret_suffix},
    )
    return secret


@transaction.atomic
def secret_delete(*, actor: Actor, secret: ClientSecret) -> None:
    """Revoke a secret for good (rotation's last step). A second delete is a clean no-op."""
    deleted, _ = ClientSecret.objects.filter(pk=secret.pk).delete()
    if not deleted:
        return
    audit_record(
        actor=actor,
        action="secret.delete",
        target_type="secret",
        target_id=secret.id,
        organization_id=secret.client.organization_id,
        client_id=secret.client_id,
        details={"secret_suffix": secret.secret_suffix},
    )


@transaction.atomic
def secrets_revoke_all(*, actor: Actor, client: ApiClient) -> int:
    """Delete every secret of a client (incident response)."""
    secrets = list(ClientSecret.objects.filter(client_id=client.pk))
    for secret in secrets:
        secret_delete(actor=actor, secret=secret)
    return len(secrets)


# --- Client public keys (private_key_jwt, RFC 7523) ----------------------------------------------


@transaction.atomic
def client_key_add(*, actor: Actor, client: ApiClient, jwk: Any) -> ClientKey:
    """Register a public key the client will sign its assertions with.

    A JWK with private members, an unsupported key, or a kid the client already uses is a
    ``ValidationError`` (field ``jwk.<member>``), and nothing is stored.
    """
    try:
        parsed = parse_public_jwk(jwk)
    except JWKError as exc:
        field = "jwk" if exc.field == "jwk" else f"jwk.{exc.field}"
        raise ValidationError({field: [exc.message]}) from exc
    # Lock the client row so that two concurrent adds cannot both pass the checks.
    if ApiClient.objects.select_for_update().filter(pk=client.pk).first() is None:
        raise ApiClient.DoesNotExist("client was deleted")
    limit = settings.OAUTH["MAX_KEYS_PER_CLIENT"]
    if ClientKey.objects.filter(client_id=client.pk).count() >= limit:
        raise ValidationError(
            f"a client holds at most {limit} keys; delete one first", code="limit"
        )
    if ClientKey.objects.filter(client_id=client.pk, kid=parsed.kid).exists():
        raise ValidationError(
            {"jwk.kid": [f"this client already has a key with kid {parsed.kid!r}"]}
        )
    key = ClientKey.objects.create(
        client=client, kid=parsed.kid, kty=parsed.kty, alg=parsed.alg, jwk=parsed.jwk
    )
    audit_record(
        actor=actor,
        action="client_key.create",
        target_type="client_key",
        target_id=key.id,
        organization_id=client.organization_id,
        client_id=client.id,
        details={"kid": key.kid, "kty": key.kty, "alg": key.alg},
    )
    return key


@transaction.atomic
def client_key_delete(*, actor: Actor, key: ClientKey) -> None:
    """Remove a public key: assertions signed with it fail from the next request on."""
    deleted, _ = ClientKey.objects.filter(pk=key.pk).delete()
    if not deleted:
        return
    audit_record(
        actor=actor,
        action="client_key.delete",
        target_type="client_key",
        target_id=key.id,
        organization_id=key.client.organization_id,
        client_id=key.client_id,
        details={"kid": key.kid},
    )


# --- Access tokens (RFC 7009) --------------------------------------------------------------------


@transaction.atomic
def token_revoke(
    *, actor: Actor, jti: str, client_id: str, organization_id: str | None, expire_time: datetime
) -> bool:
    """Remember a token's ``jti`` as revoked until the token expires. False if it already was.

    Rows of tokens that have expired anyway are purged here, so the table stays small.
    """
    now = timezone.now()
    RevokedToken.objects.filter(expire_time__lte=now).delete()
    if expire_time <= now or RevokedToken.objects.filter(pk=jti).exists():
        return False
    try:
        with transaction.atomic():
            RevokedToken.objects.create(jti=jti, client_id=client_id, expire_time=expire_time)
    except IntegrityError:
        return False  # revoked concurrently: the first request wrote the audit event
    audit_record(
        actor=actor,
        action="token.revoke",
        target_type="token",
        target_id=jti,
        organization_id=organization_id,
        client_id=client_id,
        details={"expire_time": expire_time.isoformat()},
    )
    return True
