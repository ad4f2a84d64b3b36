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

from clients.jwk import JWKError, parse_public_jwk
from clients.models import (
    ApiClient,
    ApiResource,
    ApiScope,
    AuditEvent,
    ClientKey,
    ClientSecret,
    Invitation,
    Membership,
    Organization,
    hash_secret,
    make_plain_secret,
    new_client_id,
    new_management_client_id,
)


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


# --- Portal accounts and members -----------------------------------------------------------------


def _user_model() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model()


def _create_user(*, email: str, password: str) -> Any:
    """A portal user: the email is the username. The form validated the password already."""
    User = _user_model()
    email = User.objects.normalize_email(email).strip()
    if User.objects.filter(username__iexact=email).exists():
        raise ValidationError({"email": ["an account with this email exists; log in instead"]})
    try:
        with transaction.atomic():
            return User.objects.create_user(username=email, email=email, password=password)
    except IntegrityError as exc:
        raise ValidationError({"email": ["an account with this email exists"]}) from exc


def _membership_add(
    *, actor: Actor, user: Any, organization: Organization, role: str
) -> Membership:
    if Membership.objects.filter(user=user, organization=organization).exists():
        raise ValidationError("you are already a member of this organization", code="member")
    membership = Membership.objects.create(user=user, organization=organization, role=role)
    audit_record(
        actor=actor,
        action="member.add",
        target_type="member",
        target_id=str(membership.pk),
        organization_id=organization.id,
        details={"user": user.get_username(), "role": role},
    )
    return membership


@transaction.atomic
def account_signup(
    *, email: str, password: str, organization_name: str, ip: str | None = None
) -> tuple[Any, Organization, Membership]:
    """Self sign-up: a user, a new organization, and the user as its owner."""
    user = _create_user(email=email, password=password)
    actor = Actor.for_user(user, ip=ip)
    organization = organization_create(actor=actor, display_name=organization_name)
    membership = _membership_add(
        actor=actor, user=user, organization=organization, role=Membership.Role.OWNER
    )
    return user, organization, membership


@transaction.atomic
def invitation_create(
    *, actor: Actor, organization: Organization, email: str, role: str, invited_by: Any
) -> Invitation:
    """Invite someone by email. The caller sends the link (``invitation_token``)."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"role must be one of {Membership.Role.values}"]})
    email = _user_model().objects.normalize_email(email).strip()
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError({"email": ["this person is already a member"]})
    invitation = Invitation(
        organization=organization, email=email, role=role, invited_by=invited_by
    )
    _check_model(invitation)
    invitation.save()
    audit_record(
        actor=actor,
        action="invitation.create",
        target_type="invitation",
        target_id=str(invitation.pk),
        organization_id=organization.id,
        details={"email": email, "role": role},
    )
    return invitation


def _invitation_use(invitation: Invitation) -> Invitation:
    # Lock and re-read: two tabs accepting the same link must not both succeed.
    locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if locked is None or locked.accepted_time is not None:
        raise ValidationError("this invitation was already used", code="used")
    locked.accepted_time = timezone.now()
    locked.save(update_fields=["accepted_time"])
    return locked


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: Any, ip: str | None = None) -> Membership:
    """An existing user joins with the invited role. The invitation was sent to their email."""
    if (user.email or "").lower() != invitation.email.lower():
        raise ValidationError(
            f"this invitation was sent to {invitation.email}; log in with that account",
            code="email",
        )
    invitation = _invitation_use(invitation)
    return _membership_add(
        actor=Actor.for_user(user, ip=ip),
        user=user,
        organization=invitation.organization,
        role=invitation.role,
    )


@transaction.atomic
def invitation_accept_with_signup(
    *, invitation: Invitation, password: str, ip: str | None = None
) -> tuple[Any, Membership]:
    """A new user sets a password and joins: the account's email is the invited one."""
    user = _create_user(email=invitation.email, password=password)
    return user, invitation_accept(invitation=invitation, user=user, ip=ip)


def _lock_owners(organization_id: str) -> list[int]:
    return list(
        Membership.objects.select_for_update()
        .filter(organization_id=organization_id, role=Membership.Role.OWNER)
        .values_list("pk", flat=True)
    )


@transaction.atomic
def member_role_change(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change a member's role; the last owner cannot be demoted."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"role must be one of {Membership.Role.values}"]})
    owners = _lock_owners(membership.organization_id)
    membership.refresh_from_db()
    demotes_owner = membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER
    if demotes_owner and owners == [membership.pk]:
        raise ValidationError(
            "an organization needs an owner; make someone else owner first", code="last_owner"
        )
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="member.role_change",
        target_type="member",
        target_id=str(membership.pk),
        organization_id=membership.organization_id,
        details={"user": membership.user.get_username(), "from": old, "to": role},
    )
    return membership


@transaction.atomic
def member_remove(*, actor: Actor, membership: Membership) -> None:
    """Remove a member; the last owner cannot be removed."""
    owners = _lock_owners(membership.organization_id)
    if owners == [membership.pk]:
        raise ValidationError(
            "an organization needs an owner; make someone else owner first", code="last_owner"
        )
    username = membership.user.get_username()
    deleted, _ = Membership.objects.filter(pk=membership.pk).delete()
    if not deleted:
        return
    audit_record(
        actor=actor,
        action="member.remove",
        target_type="member",
        target_id=str(membership.pk),
        organization_id=membership.organization_id,
        details={"user": username, "role": membership.role},
    )


# --- The API catalog -----------------------------------------------------------------------------


def catalog_for(organization: Organization) -> list[ApiResource]:
    """The APIs this organization may grant, with their scopes prefetched."""
    apis = organization.allowed_apis.all() if organization.restrict_apis else ApiResource.objects
    return list(apis.prefetch_related("scopes").order_by("name", "id"))


def catalog_check(*, organization: Organization, audience: list[str], scopes: list[str]) -> None:
    """Raise ValidationError unless every audience and scope comes from the organization's catalog.

    The portal calls this before ``client_create``/``client_update``, so a customer can never
    grant itself more than the provider allowed; the management API (the provider itself) does
    not, and stays free-form.
    """
    allowed = {
        api.audience: {scope.name for scope in api.scopes.all()}
        for api in catalog_for(organization)
    }
    errors: dict[str, list[str]] = {}
    for aud in audience:
        if aud not in allowed:
            errors.setdefault("audience", []).append(f"{aud!r} is not an API you may use")
    offered = set().union(*(allowed[aud] for aud in audience if aud in allowed))
    for scope in scopes:
        if scope not in offered:
            errors.setdefault("scopes", []).append(f"{scope!r} is not offered by the selected APIs")
    if errors:
        raise ValidationError(errors)


def provider_grants(
    *, organization: Organization, audience: list[str], scopes: list[str]
) -> tuple[list[str], list[str]]:
    """The audiences and scopes of a client that lie outside the organization's catalog.

    The provider may grant these through the management API. The portal cannot offer them, so
    it keeps them untouched when a customer saves the client, rather than silently dropping
    them.
    """
    allowed = {
        api.audience: {scope.name for scope in api.scopes.all()}
        for api in catalog_for(organization)
    }
    offered = set().union(*allowed.values()) if allowed else set()
    return (
        [aud for aud in audience if aud not in allowed],
        [scope for scope in scopes if scope not in offered],
    )


@transaction.atomic
def api_resource_create(
    *,
    actor: Actor,
    audience: str,
    name: str,
    description: str = "",
    scopes: list[tuple[str, str]] | None = None,
) -> ApiResource:
    """Add an API to the catalog with its scopes ``[(name, description), ...]``."""
    api = ApiResource(audience=audience, name=name, description=description)
    _check_model(api)
    if ApiResource.objects.filter(audience=audience).exists():
        raise ValidationError({"audience": ["an API with this audience exists"]})
    api.save()
    for scope_name, scope_description in scopes or []:
        scope = ApiScope(api=api, name=scope_name, description=scope_description)
        _check_model(scope)
        scope.save()
    audit_record(
        actor=actor,
        action="api.create",
        target_type="api",
        target_id=str(api.pk),
        details={"audience": audience, "scopes": [name for name, _ in scopes or []]},
    )
    return api


@transaction.atomic
def organization_restrict_apis(
    *, actor: Actor, organization: Organization, apis: list[ApiResource] | None
) -> Organization:
    """Restrict an organization to ``apis`` (possibly none), or lift the restriction (None)."""
    organization.restrict_apis = apis is not None
    organization.save(update_fields=["restrict_apis", "update_time"])
    organization.allowed_apis.set(apis or [])
    audit_record(
        actor=actor,
        action="organization.restrict_apis",
        target_type="organization",
        target_id=organization.id,
        organization_id=organization.id,
        details={"apis": None if apis is None else [api.audience for api in apis]},
    )
    return organization


# --- Staff (the admin): members and the catalog ---------------------------------------------------


@transaction.atomic
def member_add(*, actor: Actor, user: Any, organization: Organization, role: str) -> Membership:
    """Staff add an existing user to an organization with a role."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"role must be one of {Membership.Role.values}"]})
    if Membership.objects.filter(user=user, organization=organization).exists():
        raise ValidationError(
            f"{user.get_username()} is already a member of this organization", code="member"
        )
    return _membership_add(actor=actor, user=user, organization=organization, role=role)


@transaction.atomic
def api_resource_update(
    *,
    actor: Actor,
    api: ApiResource,
    name: str | None = None,
    description: str | None = None,
    audience: str | None = None,
) -> ApiResource:
    """Rename or redescribe an API, or change its audience (clients keep their own copies)."""
    changed: dict[str, str] = {}
    for field, value in (("name", name), ("description", description), ("audience", audience)):
        if value is not None and getattr(api, field) != value:
            setattr(api, field, value)
            changed[field] = value
    _check_model(api)
    if ApiResource.objects.filter(audience=api.audience).exclude(pk=api.pk).exists():
        raise ValidationError({"audience": ["an API with this audience exists"]})
    api.save()
    audit_record(
        actor=actor, action="api.update", target_type="api", target_id=str(api.pk), details=changed
    )
    return api


@transaction.atomic
def api_resource_delete(*, actor: Actor, api: ApiResource) -> None:
    """Remove an API from the catalog (with its scopes). Existing clients keep their grants."""
    api_id, audience = api.pk, api.audience
    deleted, _ = ApiResource.objects.filter(pk=api_id).delete()
    if not deleted:
        return
    audit_record(
        actor=actor,
        action="api.delete",
        target_type="api",
        target_id=str(api_id),
        details={"audience": audience},
    )


@transaction.atomic
def api_scope_add(*, actor: Actor, api: ApiResource, name: str, description: str = "") -> ApiScope:
    scope = ApiScope(api=api, name=name, description=description)
    _check_model(scope)
    if ApiScope.objects.filter(api=api, name=name).exists():
        raise ValidationError({"name": [f"{api.name} already offers {name!r}"]})
    scope.save()
    audit_record(
        actor=actor,
        action="api.scope_add",
        target_type="api",
        target_id=str(api.pk),
        details={"audience": api.audience, "scope": name},
    )
    return scope


@transaction.atomic
def api_scope_update(
    *, actor: Actor, scope: ApiScope, name: str | None = None, description: str | None = None
) -> ApiScope:
    old = scope.name
    if name is not None:
        scope.name = name
    if description is not None:
        scope.description = description
    _check_model(scope)
    if ApiScope.objects.filter(api_id=scope.api_id, name=scope.name).exclude(pk=scope.pk).exists():
        raise ValidationError({"name": [f"this API already offers {scope.name!r}"]})
    scope.save()
    audit_record(
        actor=actor,
        action="api.scope_update",
        target_type="api",
        target_id=str(scope.api_id),
        details={"scope": scope.name, "was": old},
    )
    return scope


@transaction.atomic
def api_scope_delete(*, actor: Actor, scope: ApiScope) -> None:
    deleted, _ = ApiScope.objects.filter(pk=scope.pk).delete()
    if not deleted:
        return
    audit_record(
        actor=actor,
        action="api.scope_delete",
        target_type="api",
        target_id=str(scope.api_id),
        details={"scope": scope.name},
    )


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
