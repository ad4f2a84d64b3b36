"""The token endpoint's side of workload identity federation (``oauth.federation``): the RFC 7523
§2.1 JWT bearer grant, its refusals as OAuth errors, its failures counted toward the same limits
as failed client authentications (``oauth.ratelimit``), and the audit event of each token issued
for an external workload, naming the trust policy that admitted it.
"""

from __future__ import annotations

from typing import Any

from clients import services
from oauth import federation, ratelimit
from oauth import metrics as token_metrics
from oauth.token.authenticate import issuer_unavailable, too_many_failures
from oauth.token.lookup import AuthenticatedClient
from oauth.token.request import OAuthError

GRANT_TYPE = federation.JWT_BEARER_GRANT


def grant_client(
    authorization: str | None, params: dict[str, list[str]], log: dict[str, Any], ip: str | None
) -> AuthenticatedClient:
    """The client of a JWT bearer grant (``assertion`` = the external token, ``client_id`` = the
    client whose trust policies it must pass). Every refusal is ``invalid_grant`` and counts as
    a failed attempt of this client_id from this address."""
    if authorization is not None or "client_secret" in params or "client_assertion" in params:
        raise OAuthError(
            "invalid_request",
            "the jwt-bearer grant takes the external token as assertion, and client_id; "
            "no other client authentication",
        )
    assertion = params.get("assertion", [None])[0]
    client_id = params.get("client_id", [None])[0]
    if not assertion:
        raise OAuthError("invalid_request", "assertion is required: the external token")
    if not client_id:
        raise OAuthError("invalid_request", "client_id is required: it selects the trust policies")
    presented = token_metrics.loggable_client_id(client_id)
    if presented:
        log["client_id"] = presented
    # Checked, then counted only when refused: a success writes nothing. Unlike a secret, a
    # signed external token cannot be guessed, so a parallel burst that slips past the check
    # costs signature checks, not a chance at a credential; the next attempt is refused.
    counters = ratelimit.token_failure_counters(client_id, ip)
    try:
        ratelimit.check(counters)
    except ratelimit.RateLimited as limited:
        raise too_many_failures(limited) from None
    try:
        client = federation.federated_client(assertion, client_id)
    except federation.FederationRejected as exc:
        ratelimit.hit(counters)
        raise OAuthError("invalid_grant", exc.description) from None
    except federation.IssuerUnavailable as exc:
        raise issuer_unavailable(exc) from None
    log["client_id"] = client.client_id
    if client.organization_id:
        log["organization_id"] = client.organization_id
    return client


def record(client: AuthenticatedClient, jti: str, ip: str | None) -> None:
    """The audit event of a token issued for an external workload: which policy let it in."""
    admitted = client.federation
    if admitted is None:
        return
    services.federated_token_record(
        client_id=client.client_id,
        organization_id=client.organization_id,
        policy_id=admitted.policy_id,
        policy_name=admitted.policy_name,
        jti=jti,
        external_issuer=admitted.issuer,
        external_subject=admitted.subject or "",
        ip=ip,
    )
