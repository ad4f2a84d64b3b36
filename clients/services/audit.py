"""Who made a change, and the audit event every service writes for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from clients import webhooks
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
    TrustPolicy,
    WebhookEndpoint,
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
    details: dict[str, Any] | None = None,
    target: Any = None,
) -> AuditEvent:
    """Write one audit event, and its webhook event with the deliveries it needs, in the
    caller's transaction. Services call it through the helpers below; views never do.

    ``target`` is the changed object, for the webhook event's public fields (optional)."""
    event = AuditEvent.objects.create(
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
    # The transactional outbox of the webhooks: the one place every audited change passes.
    webhooks.emit(event, target)
    return event


# One helper per kind of target: each knows which organization and client its object belongs to,
# so an event can be found from either. Names are kept on the event as they were (the client's
# name, the member's address), so that an event still reads right after a rename or a deletion.
# The actions each kind knows are listed with it.

OrganizationAction = Literal[
    "organization.create",
    "organization.update",
    "organization.delete",
    "organization.restrict_apis",
]
ClientAction = Literal[
    "client.create", "client.update", "client.delete", "management_client.create"
]
SecretAction = Literal[
    "secret.create",
    "secret.activate",
    "secret.deactivate",
    "secret.delete",
    "secret.leak",
    "secret.expiry_reminder",
]
KeyAction = Literal["client_key.create", "client_key.delete"]
MemberAction = Literal["member.add", "member.role_change", "member.remove"]
InvitationAction = Literal["invitation.create", "invitation.cancel", "invitation.resend"]
ApiAction = Literal[
    "api.create",
    "api.update",
    "api.delete",
    "api.scope_add",
    "api.scope_update",
    "api.scope_delete",
]
SigningKeyAction = Literal["signing_key.rotate", "signing_key.withdraw"]
WebhookEndpointAction = Literal[
    "webhook_endpoint.create",
    "webhook_endpoint.update",
    "webhook_endpoint.delete",
    "webhook_endpoint.rotate_secret",
    "webhook_endpoint.disable",
]
TokenAction = Literal["token.revoke", "token.federated"]
TrustPolicyAction = Literal["trust_policy.create", "trust_policy.update", "trust_policy.delete"]
QuotaAction = Literal["quota.warn", "quota.exceed"]


def audit_organization(
    actor: Actor,
    action: OrganizationAction,
    organization: Organization,
    *,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    return audit_record(
        actor=actor,
        action=action,
        target_type="organization",
        target_id=organization.id,
        organization_id=organization.id,
        details=details,
        target=organization,
    )


def audit_client(
    actor: Actor, action: ClientAction, client: ApiClient, *, details: dict[str, Any] | None = None
) -> AuditEvent:
    """A client's event; a management client's has no organization."""
    return audit_record(
        actor=actor,
        action=action,
        target_type="client",
        target_id=client.id,
        organization_id=client.organization_id,
        client_id=client.id,
        details={"client_name": client.name, **(details or {})},
        target=client,
    )


def audit_secret(
    actor: Actor,
    action: SecretAction,
    secret: ClientSecret,
    *,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """A secret's event, named by the secret's last four characters (never the secret)."""
    return audit_record(
        actor=actor,
        action=action,
        target_type="secret",
        target_id=secret.id,
        organization_id=secret.client.organization_id,
        client_id=secret.client_id,
        details={
            "secret_suffix": secret.secret_suffix,
            "client_name": secret.client.name,
            **(details or {}),
        },
        target=secret,
    )


def audit_key(
    actor: Actor, action: KeyAction, key: ClientKey, *, details: dict[str, Any] | None = None
) -> AuditEvent:
    """A client public key's event, named by its kid."""
    return audit_record(
        actor=actor,
        action=action,
        target_type="client_key",
        target_id=key.id,
        organization_id=key.client.organization_id,
        client_id=key.client_id,
        details={"kid": key.kid, "client_name": key.client.name, **(details or {})},
        target=key,
    )


def audit_trust_policy(
    actor: Actor,
    action: TrustPolicyAction,
    policy: TrustPolicy,
    *,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """A trust policy's event, named by the policy's name."""
    return audit_record(
        actor=actor,
        action=action,
        target_type="trust_policy",
        target_id=policy.id,
        organization_id=policy.client.organization_id,
        client_id=policy.client_id,
        details={"name": policy.name, **(details or {})},
        target=policy,
    )


def audit_member(
    actor: Actor,
    action: MemberAction,
    membership: Membership,
    *,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """A membership's event, named by the member's username."""
    return audit_record(
        actor=actor,
        action=action,
        target_type="member",
        target_id=str(membership.pk),
        organization_id=membership.organization_id,
        details={"user": membership.user.get_username(), **(details or {})},
        target=membership,
    )


def audit_invitation(
    actor: Actor,
    action: InvitationAction,
    invitation: Invitation,
    *,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    return audit_record(
        actor=actor,
        action=action,
        target_type="invitation",
        target_id=str(invitation.pk),
        organization_id=invitation.organization_id,
        details=details,
        target=invitation,
    )


def audit_api(
    actor: Actor,
    action: ApiAction,
    target: ApiResource | ApiScope,
    *,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """A catalog event. A scope's event is its API's: the catalog is audited API by API."""
    api_id = target.api_id if isinstance(target, ApiScope) else target.pk
    return audit_record(
        actor=actor, action=action, target_type="api", target_id=str(api_id), details=details
    )


def audit_signing_key(
    actor: Actor, action: SigningKeyAction, kid: str, *, details: dict[str, Any] | None = None
) -> AuditEvent:
    """A signing key's event (the keys live in oauth, which clients must not import)."""
    return audit_record(
        actor=actor, action=action, target_type="signing_key", target_id=kid, details=details
    )


def audit_token(
    actor: Actor,
    action: TokenAction,
    jti: str,
    *,
    client_id: str,
    organization_id: str | None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """An access token's event: tokens are not stored, so the caller names its owner."""
    return audit_record(
        actor=actor,
        action=action,
        target_type="token",
        target_id=jti,
        organization_id=organization_id,
        client_id=client_id,
        details=details,
    )


def audit_webhook_endpoint(
    actor: Actor,
    action: WebhookEndpointAction,
    endpoint: WebhookEndpoint,
    *,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """A webhook endpoint's event, named by its URL (never its signing secret)."""
    return audit_record(
        actor=actor,
        action=action,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        organization_id=endpoint.organization_id,
        details={"url": endpoint.url, **(details or {})},
        target=endpoint,
    )
