"""POST /oauth/token (the client_credentials grant, RFC 6749 §4.4), from the parts of an HTTP
request to the parts of its answer: ``token_endpoint`` is what the Django view
(``oauth.views.token``) and the server's fast path (``portal.serving.fastpath``) both call, so
parsing, validation, errors and metrics live here once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError

from oauth import dpop, keys, quotas
from oauth import metrics as token_metrics
from oauth.token import federated, lookup
from oauth.token.authenticate import authenticate_client, dummy_check
from oauth.token.lookup import Prefetched
from oauth.token.request import NO_STORE, OAuthError, TokenRequest, token_request_of
from oauth.token.signing import issue_token
from portal.lib.encoding import compact_json

logger = logging.getLogger("oauth.token")

# The token endpoint's answer, independent of any web framework: (status, headers, JSON body).
TokenAnswer = tuple[int, dict[str, str], bytes]
JSON_CONTENT_TYPE = "application/json"


def _answer(body: dict[str, Any], status: int = 200, headers: dict | None = None) -> TokenAnswer:
    return (
        status,
        {"Content-Type": JSON_CONTENT_TYPE, **NO_STORE, **(headers or {})},
        compact_json(body),
    )


def _requested_scopes(params: dict[str, list[str]], registered: list[str]) -> list[str]:
    raw = params.get("scope", [""])[0]
    requested = raw.split()
    if not requested:
        return list(registered)
    unknown = [scope for scope in requested if scope not in registered]
    if unknown:
        raise OAuthError("invalid_scope", "requested scope is not granted to this client")
    # Keep the registered order, once each.
    wanted = set(requested)
    return [scope for scope in registered if scope in wanted]


def _requested_audience(params: dict[str, list[str]], registered: list[str]) -> list[str]:
    requested: list[str] = []
    for name in ("audience", "resource"):
        for value in params.get(name, []):
            requested.extend(value.split() if name == "audience" else [value])
    if not requested:
        return list(registered)
    if any(aud not in registered for aud in requested):
        raise OAuthError("invalid_target", "requested audience is not registered for this client")
    wanted = set(requested)
    return [aud for aud in registered if aud in wanted]


def _token(
    content_type: str,
    content_length: int | None,
    authorization: str | None,
    read: Callable[[int], bytes],
    log: dict[str, Any],
    ip: str | None,
    ahead: Prefetched | None,
    parsed: TokenRequest | OAuthError | None,
    proof: str | None,
    target_uri: str | None,
) -> TokenAnswer:
    if ahead is not None and ahead.rows is None:
        # The batch's query timed out: asking again (or the rate limiter, maybe in the same
        # database) would only wait as long.
        raise DatabaseError("the token query did not answer in time")
    if parsed is None:
        parsed = token_request_of(content_type, content_length, authorization, read)
    elif isinstance(parsed, OAuthError):
        raise parsed
    params = parsed.params
    grant_type = params.get("grant_type", [None])[0]
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type == federated.GRANT_TYPE:
        client, auth_method = federated.grant_client(authorization, params, log, ip), "jwt_bearer"
    elif grant_type != "client_credentials":
        raise OAuthError(
            "unsupported_grant_type",
            f"only client_credentials and {federated.GRANT_TYPE} are supported",
        )
    else:
        client, auth_method = authenticate_client(
            authorization, params, log, ip, ahead, parsed.credentials
        )
    try:
        scopes = _requested_scopes(params, client.scopes)
        audience = _requested_audience(params, client.audience)
        jkt, headers = None, None
        if proof is not None:  # only then: a bearer request does no DPoP work
            jkt = _proof_key(proof, target_uri)
            headers = dpop.nonce_headers()
        elif client.dpop_bound:
            raise OAuthError(
                "invalid_dpop_proof", "this client's tokens are DPoP-bound: send a DPoP proof"
            )
    except OAuthError as error:
        if client.quota is not None:  # every answer to a client under a quota says where it is
            limits = quotas.take(client.client_id, client.organization_id, client.quota, False)
            error.headers = {**error.headers, **limits}
        raise
    if client.quota is not None:  # only then: a client without a quota does no quota work
        limits = quotas.take(client.client_id, client.organization_id, client.quota)
        headers = {**(headers or {}), **limits}
    token = issue_token(client, scopes=scopes, audience=audience, jkt=jkt)
    if client.federation is not None:
        federated.record(client, token.jti, ip)
        auth_method = "jwt_bearer" if auth_method == "jwt_bearer" else "federated_assertion"
    body: dict[str, Any] = {
        "access_token": token.access_token,
        "token_type": "Bearer" if jkt is None else "DPoP",
        "expires_in": token.expires_in,
    }
    if token.scopes:
        body["scope"] = " ".join(token.scopes)
    token_metrics.record_token_issued(auth_method, client.client_id, client.organization_id)
    log.update(outcome="token_issued", auth_method=auth_method)
    return _answer(body, headers=headers)


def _proof_key(proof: str, target_uri: str | None) -> str:
    """The thumbprint of a token request's valid DPoP proof (RFC 9449 §5), or the refusal:
    400 ``invalid_dpop_proof``, or ``use_dpop_nonce`` with the nonce to use (§8)."""
    try:
        return dpop.token_proof(proof, "POST", (target_uri,) if target_uri else ())
    except dpop.UseDPoPNonce as exc:
        raise OAuthError(exc.error, exc.description, headers=dpop.nonce_headers()) from exc
    except dpop.InvalidDPoPProof as exc:
        raise OAuthError(exc.error, exc.description) from exc


def token_endpoint(
    method: str,
    content_type: str,
    content_length: int | None,
    authorization: str | None,
    read: Callable[[int], bytes],
    log: dict[str, Any],
    client_ip: str | None = None,
    ahead: Prefetched | None = None,
    parsed: TokenRequest | OAuthError | None = None,
    proof: str | None = None,
    target_uri: str | None = None,
) -> TokenAnswer:
    """POST /oauth/token (the client_credentials grant), from the parts of an HTTP request.

    ``read(n)`` returns up to ``n`` bytes of the body; it is called at most once. The metrics
    are counted here; ``log`` receives the fields of the access-log line (``client_id``,
    ``organization_id``, ``outcome``, ``auth_method``), never a credential. ``client_ip``
    (from portal.lib.net.client_ip) keys the per-address failure limit. ``ahead``: the rows of
    the client the request names, when the server has read them already (oauth.token.batching).
    ``parsed``: what ``token_request_of`` made of this request (or the error it raised) when
    the server parsed it already to decide where to answer it; the body is then not read again.
    ``proof``: the ``DPoP`` header, when the request has one (RFC 9449), and ``target_uri`` the
    URI it was sent to (scheme and host as the client used them, behind a trusted proxy too);
    the issued token is then bound to the proof's key.
    """
    if method != "POST":
        return _refused(
            OAuthError("invalid_request", "method not allowed; use POST", 405, {"Allow": "POST"}),
            log,
        )
    try:
        return _token(
            content_type,
            content_length,
            authorization,
            read,
            log,
            client_ip,
            ahead,
            parsed,
            proof,
            target_uri,
        )
    except OAuthError as error:
        return _refused(error, log)
    except DatabaseError as exc:
        # The class and message only: the query's parameters never reach the log.
        logger.warning("token endpoint: database unavailable: %s: %s", type(exc).__name__, exc)
        return _refused(
            OAuthError("temporarily_unavailable", "try again shortly", 503, {"Retry-After": "5"}),
            log,
        )


def _refused(error: OAuthError, log: dict[str, Any]) -> TokenAnswer:
    # Against the client the request names: its organization is known once it authenticated;
    # otherwise oauth.stats looks the client up when it flushes (and drops made-up ids).
    token_metrics.record_token_failure(
        error.error, log.get("client_id"), log.get("organization_id"), error.count_as
    )
    log["outcome"] = error.error
    return _answer(
        {"error": error.error, "error_description": error.description},
        status=error.status,
        headers=error.headers,
    )


def warm_up() -> None:
    """Do at start-up what the first token request would otherwise do: build the SQL, parse the
    current signing key, make the dummy hash, and open the database connection."""
    lookup.prepare()
    keys.current_loaded_key()
    dummy_check("warm-up")
