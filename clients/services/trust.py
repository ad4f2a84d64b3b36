"""Trust policies (workload identity federation): add, change, delete; and the audit event of a
token issued for an external workload token."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from clients.models import ApiClient, TrustPolicy
from clients.services._common import check_model, delete_once
from clients.services.audit import Actor, audit_token, audit_trust_policy
from clients.trust import MAX_POLICIES_PER_CLIENT, public_jwks

TRUST_POLICY_FIELDS = (
    "name",
    "issuer",
    "jwks",
    "audience",
    "subject",
    "claim_conditions",
    "max_token_age",
)


def _checked(policy: TrustPolicy) -> None:
    check_model(policy, exclude=["id", "client"])
    if policy.jwks is not None:
        policy.jwks = public_jwks(policy.jwks)  # only the public members are kept


@transaction.atomic
def trust_policy_create(*, actor: Actor, client: ApiClient, **fields: Any) -> TrustPolicy:
    """Add a trust policy; at most MAX_POLICIES_PER_CLIENT per client. Fields left out take
    their defaults (audience: our issuer; max_token_age: 300 s)."""
    unknown = set(fields) - set(TRUST_POLICY_FIELDS)
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in sorted(unknown)})
    # Lock the client row so that two concurrent adds cannot both pass the limit check.
    if ApiClient.objects.select_for_update().filter(pk=client.pk).first() is None:
        raise ApiClient.DoesNotExist("client was deleted")
    if TrustPolicy.objects.filter(client_id=client.pk).count() >= MAX_POLICIES_PER_CLIENT:
        raise ValidationError(
            f"a client holds at most {MAX_POLICIES_PER_CLIENT} trust policies; delete one first",
            code="limit",
        )
    policy = TrustPolicy(client=client, **fields)
    _checked(policy)
    policy.save()
    audit_trust_policy(actor, "trust_policy.create", policy, details={"issuer": policy.issuer})
    return policy


@transaction.atomic
def trust_policy_update(*, actor: Actor, policy: TrustPolicy, **fields: Any) -> TrustPolicy:
    """Change the given fields of a policy, keep the others; the next token request sees it."""
    unknown = set(fields) - set(TRUST_POLICY_FIELDS)
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in sorted(unknown)})
    changed = sorted(name for name, value in fields.items() if getattr(policy, name) != value)
    for name, value in fields.items():
        setattr(policy, name, value)
    _checked(policy)
    policy.save()
    audit_trust_policy(actor, "trust_policy.update", policy, details={"changed": changed})
    return policy


@transaction.atomic
def trust_policy_delete(*, actor: Actor, policy: TrustPolicy) -> None:
    """Remove a policy: tokens it admitted stop working from the next request on."""
    if delete_once(policy):
        audit_trust_policy(actor, "trust_policy.delete", policy)


def federated_token_record(
    *,
    client_id: str,
    organization_id: str | None,
    policy_id: str,
    policy_name: str,
    jti: str,
    external_issuer: str,
    external_subject: str,
    ip: str | None,
) -> None:
    """The audit event of an access token issued for an external workload token: which trust
    policy admitted which workload (never the external token itself)."""
    audit_token(
        Actor.for_client(client_id, ip),
        "token.federated",
        jti,
        client_id=client_id,
        organization_id=organization_id,
        details={
            "trust_policy_id": policy_id,
            "trust_policy_name": policy_name,
            "external_iss": external_issuer,
            "external_sub": external_subject,
        },
    )
