"""Workload identity federation at the token endpoint (issue 18): external workload tokens from a
local OIDC issuer (tokens shaped like GitHub Actions' and Kubernetes'), by both request forms:
the RFC 7523 §2.1 jwt-bearer grant and §2.2 client assertion in the client-credentials grant."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from clients.models import AuditEvent
from clients.services import (
    client_create,
    trust_policy_create,
    trust_policy_delete,
    trust_policy_update,
)
from m2m_auth_kit.client import ClientCredentials
from oauth import federation
from tests.assertion_helpers import ASSERTION_TYPE, ec_key, public_jwk, rsa_key
from tests.conftest import SYSTEM, post_form
from tests.oauth.token.test_endpoint import assert_oauth_error, decode
from tests.oidc_issuer import Issuer, kubernetes_claims, local_server

pytestmark = pytest.mark.django_db

OUR_ISSUER = "http://127.0.0.1:8000"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
WORKFLOW = "acmecorp/ci/.github/workflows/deploy.yml@refs/heads/main"
K8S_ISSUER = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture(autouse=True)
def insecure(settings):
    """The issuer runs on 127.0.0.1 over http: the test-only setting allows exactly that."""
    settings.OUTBOUND_ALLOW_INSECURE = True
    federation.forget_issuer_keys()
    yield
    federation.forget_issuer_keys()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with local_server() as server:
        yield Issuer(server)


@pytest.fixture
def github_policy(guide_client, issuer):
    return trust_policy_create(
        actor=SYSTEM,
        client=guide_client.client,
        name="GitHub deploy",
        issuer=issuer.url,
        subject="repo:acmecorp/*:environment:production",
        claim_conditions=[
            {"claim": "repository_owner", "value": "acmecorp"},
            {"claim": "job_workflow_ref", "value": WORKFLOW},
        ],
    )


def grant(client, token: str, client_id: str, address: str = "127.0.0.1", **extra):
    form = {"grant_type": GRANT, "assertion": token, "client_id": client_id, **extra}
    return post_form(client, "/oauth/token", form, REMOTE_ADDR=address)


def assertion(client, token: str, client_id: str, **extra):
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": token,
        **extra,
    }
    return post_form(client, "/oauth/token", form)


FORMS = [(grant, 400, "invalid_grant"), (assertion, 401, "invalid_client")]


@pytest.mark.parametrize("send", [grant, assertion])
def test_a_matching_github_token_gets_an_access_token(
    client, guide_client, issuer, github_policy, send
):
    token = issuer.github_token(OUR_ISSUER)
    response = send(client, token, guide_client.client_id)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "deploy:applications read:deployments"
    claims = decode(body["access_token"], client)
    assert claims["sub"] == claims["client_id"] == guide_client.client_id
    assert claims["act"] == {
        "iss": issuer.url,
        "sub": "repo:acmecorp/inventory-service:environment:production",
    }
    assert claims["github_repository"] == "acmecorp/inventory-service"  # custom claims kept
    event = AuditEvent.objects.get(action="token.federated")
    assert event.target_id == claims["jti"] and event.client_id == guide_client.client_id
    assert event.details["trust_policy_id"] == github_policy.id
    assert event.details["trust_policy_name"] == "GitHub deploy"
    assert token not in str(event.details)


def test_the_grant_narrows_scope_and_audience_like_any_token(
    client, guide_client, issuer, github_policy
):
    token = issuer.github_token(OUR_ISSUER)
    response = grant(
        client,
        token,
        guide_client.client_id,
        scope="read:deployments",
        audience="deployment-api.acmecorp.com",
    )
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "read:deployments"
    response = grant(client, token, guide_client.client_id, scope="admin")
    assert_oauth_error(response, 400, "invalid_scope")


def test_a_token_may_be_reused_until_it_expires(client, guide_client, issuer, github_policy):
    token = issuer.github_token(OUR_ISSUER)
    assert grant(client, token, guide_client.client_id).status_code == 200
    assert grant(client, token, guide_client.client_id).status_code == 200


def test_single_use_refuses_the_second_use(settings, client, guide_client, issuer, github_policy):
    settings.OAUTH = {**settings.OAUTH, "FEDERATION_SINGLE_USE": True}
    token = issuer.github_token(OUR_ISSUER)
    assert grant(client, token, guide_client.client_id).status_code == 200
    body = assert_oauth_error(grant(client, token, guide_client.client_id), 400, "invalid_grant")
    assert body["error_description"] == "the external token was already used (single use)"
    # Another token of the same workload is fine.
    assert grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id).status_code == 200


def _other_rsa_pem() -> bytes:
    return (
        rsa_key(3)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _mismatches(issuer: Issuer) -> dict[str, tuple[str, str]]:
    """Each single mismatch: (the token, the description it must get)."""
    now = int(time.time())
    claims = issuer.github_claims(OUR_ISSUER)
    hs_key = issuer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "issuer": (
            issuer.github_token(OUR_ISSUER, iss="https://gitlab.com"),
            "no trust policy of the client accepts the external token's iss",
        ),
        "audience": (
            issuer.github_token("https://github.com/acmecorp"),
            "the external token's aud does not name the policy's audience",
        ),
        "subject": (
            issuer.github_token(OUR_ISSUER, sub="repo:acmecorp/api:environment:staging"),
            "the external token's sub does not match the policy's subject",
        ),
        "subject across a field": (
            issuer.github_token(OUR_ISSUER, sub="repo:acmecorp/x:ref:main:environment:production"),
            "the external token's sub does not match the policy's subject",
        ),
        "repository_owner": (
            issuer.github_token(OUR_ISSUER, repository_owner="evilcorp"),
            "the external token's repository_owner claim does not match the policy",
        ),
        "job_workflow_ref": (
            issuer.github_token(
                OUR_ISSUER, job_workflow_ref=WORKFLOW.replace("heads/main", "heads/dev")
            ),
            "the external token's job_workflow_ref claim does not match the policy",
        ),
        "a missing claim": (
            issuer.github_token(OUR_ISSUER, job_workflow_ref=None),
            "the external token's job_workflow_ref claim does not match the policy",
        ),
        "age": (
            issuer.github_token(OUR_ISSUER, iat=now - 400, nbf=now - 400, exp=now + 300),
            "the external token is older than the policy's max_token_age (300 s)",
        ),
        "expiry": (
            issuer.github_token(OUR_ISSUER, iat=now - 200, nbf=now - 200, exp=now - 60),
            "the external token has expired",
        ),
        "not yet valid": (
            issuer.github_token(OUR_ISSUER, nbf=now + 600),
            "the external token is not valid yet (nbf or iat)",
        ),
        "no iat": (
            issuer.github_token(OUR_ISSUER, iat=None),
            "the external token lacks the iat claim",
        ),
        "alg none": (
            jwt.encode(claims, None, algorithm="none", headers={"kid": issuer.kid}),
            "the external token's alg must be one of RS256, ES256, PS256",
        ),
        "HS256 signed with the public key": (
            _hmac_token(claims, hs_key, issuer.kid),
            "the external token's alg must be one of RS256, ES256, PS256",
        ),
        "RS384": (
            issuer.sign(claims, alg="RS384"),
            "the external token's alg must be one of RS256, ES256, PS256",
        ),
        "a key not in the issuer's JWKS, same kid": (
            issuer.sign(claims, key=rsa_key(3)),
            federation.NO_KEY,
        ),
        "a key not in the issuer's JWKS, other kid": (
            issuer.sign(claims, key=rsa_key(3), kid="stolen"),
            federation.NO_KEY,
        ),
        "a key not in the issuer's JWKS, no kid": (
            issuer.sign(claims, key=rsa_key(3), kid=None),
            federation.NO_KEY,
        ),
        "an EC key for an RSA kid": (
            issuer.sign(claims, key=ec_key(), alg="ES256"),
            federation.NO_KEY,
        ),
        "not a JWT": ("not-a-jwt", "the external token is not a well-formed JWT"),
    }


def _hmac_token(claims: dict, key: bytes, kid: str) -> str:
    # PyJWT refuses a PEM as an HMAC key; an attacker's library does not.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = ".".join(
        b64(json.dumps(part).encode())
        for part in ({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


MISMATCHES = [
    "issuer",
    "audience",
    "subject",
    "subject across a field",
    "repository_owner",
    "job_workflow_ref",
    "a missing claim",
    "age",
    "expiry",
    "not yet valid",
    "no iat",
    "alg none",
    "HS256 signed with the public key",
    "RS384",
    "a key not in the issuer's JWKS, same kid",
    "a key not in the issuer's JWKS, other kid",
    "a key not in the issuer's JWKS, no kid",
    "an EC key for an RSA kid",
    "not a JWT",
]


# In the assertion form, a token whose iss is the client or unreadable is private_key_jwt's.
CASES = [
    (case, *form)
    for case in MISMATCHES
    for form in FORMS
    if not (form[0] is assertion and case == "not a JWT")
]


@pytest.mark.parametrize(("case", "send", "status", "error"), CASES)
def test_each_single_mismatch_is_refused(
    client, guide_client, issuer, github_policy, case, send, status, error
):
    token, description = _mismatches(issuer)[case]
    response = send(client, token, guide_client.client_id)
    body = assert_oauth_error(response, status, error)
    assert body["error_description"] == description
    assert token not in response.content.decode()
    assert "acmecorp/inventory-service" not in body["error_description"]
    assert not AuditEvent.objects.filter(action="token.federated").exists()


def test_a_policy_of_another_client_never_applies(client, guide_client, other_client, issuer):
    trust_policy_create(
        actor=SYSTEM,
        client=other_client.client,
        name="Globex's",
        issuer=issuer.url,
        subject="repo:acmecorp/*:environment:production",
    )
    token = issuer.github_token(OUR_ISSUER)
    for send, status, error in FORMS:
        body = assert_oauth_error(send(client, token, guide_client.client_id), status, error)
        assert body["error_description"] == (
            "no trust policy of the client accepts the external token's iss"
        )
    assert grant(client, token, other_client.client_id).status_code == 200


def test_an_unknown_client_is_refused_like_one_without_a_policy(client, issuer):
    token = issuer.github_token(OUR_ISSUER)
    body = assert_oauth_error(
        grant(client, token, "m2morg_12345678901234567"), 400, "invalid_grant"
    )
    assert body["error_description"] == (
        "no trust policy of the client accepts the external token's iss"
    )


def test_deleting_a_policy_stops_it_at_once(client, guide_client, issuer, github_policy):
    token = issuer.github_token(OUR_ISSUER)
    assert grant(client, token, guide_client.client_id).status_code == 200
    trust_policy_delete(actor=SYSTEM, policy=github_policy)
    assert_oauth_error(grant(client, token, guide_client.client_id), 400, "invalid_grant")


def test_changing_a_policy_applies_at_once(client, guide_client, issuer, github_policy):
    token = issuer.github_token(OUR_ISSUER)
    trust_policy_update(
        actor=SYSTEM, policy=github_policy, subject="repo:acmecorp/*:environment:staging"
    )
    assert_oauth_error(grant(client, token, guide_client.client_id), 400, "invalid_grant")


def test_the_first_policy_that_admits_the_token_wins(client, guide_client, issuer, github_policy):
    trust_policy_update(
        actor=SYSTEM, policy=github_policy, subject="repo:acmecorp/*:environment:staging"
    )
    second = trust_policy_create(
        actor=SYSTEM,
        client=guide_client.client,
        name="Any branch of the repository",
        issuer=issuer.url,
        claim_conditions=[{"claim": "repository", "value": "acmecorp/inventory-service"}],
    )
    assert grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id).status_code == 200
    event = AuditEvent.objects.get(action="token.federated")
    assert event.details["trust_policy_id"] == second.id
    # When none admits it, each policy's failed check is named.
    token = issuer.github_token(OUR_ISSUER, repository="acmecorp/other")
    body = assert_oauth_error(grant(client, token, guide_client.client_id), 400, "invalid_grant")
    assert body["error_description"] == (
        "no trust policy admits the external token (GitHub deploy: the external token's sub "
        "does not match the policy's subject; Any branch of the repository: the external "
        "token's repository claim does not match the policy)"
    )


def test_a_rotated_issuer_key_is_picked_up(settings, client, guide_client, issuer, github_policy):
    settings.OAUTH = {**settings.OAUTH, "FEDERATION_REFETCH_SECONDS": 0}
    assert grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id).status_code == 200
    issuer.rotate()
    assert grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id).status_code == 200
    assert issuer.server.paths.count("/.well-known/jwks") == 2


def test_keys_are_cached_and_an_unknown_kid_refetches_at_most_once_a_minute(
    client, guide_client, issuer, github_policy
):
    for _ in range(3):
        assert (
            grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id).status_code
            == 200
        )
    assert issuer.server.paths.count("/.well-known/jwks") == 1
    issuer.rotate()
    for _ in range(3):
        body = assert_oauth_error(
            grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id),
            400,
            "invalid_grant",
        )
        assert body["error_description"] == federation.NO_KEY
    assert issuer.server.paths.count("/.well-known/jwks") == 1


@pytest.mark.parametrize(("send", "_status", "_error"), FORMS)
def test_an_unreachable_issuer_without_cached_keys_is_a_503(
    client, guide_client, send, _status, _error
):
    trust_policy_create(
        actor=SYSTEM,
        client=guide_client.client,
        name="down",
        issuer="http://127.0.0.1:1",
        subject="repo:acmecorp/*",
    )
    token = jwt.encode(
        {
            "iss": "http://127.0.0.1:1",
            "sub": "repo:acmecorp/x",
            "aud": OUR_ISSUER,
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        rsa_key(3),
        algorithm="RS256",
        headers={"kid": "k"},
    )
    response = send(client, token, guide_client.client_id)
    body = assert_oauth_error(response, 503, "temporarily_unavailable")
    assert response["Retry-After"] == "30"
    assert "retry after 30 s" in body["error_description"]


def test_an_issuer_that_goes_down_keeps_its_cached_keys(
    client, guide_client, issuer, github_policy
):
    assert grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id).status_code == 200
    issuer.server.routes.clear()
    for entry in federation._cache.values():
        entry.expires = 0  # as if the max-age had passed
    assert grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id).status_code == 200


def test_a_discovery_document_naming_another_issuer_is_refused(
    client, guide_client, issuer, github_policy
):
    issuer.url = "https://token.actions.githubusercontent.com"
    issuer.publish()  # the document now claims to be GitHub
    issuer.url = issuer.server.url
    response = grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id)
    assert_oauth_error(response, 503, "temporarily_unavailable")


def test_failures_count_toward_the_token_failure_limit(
    settings, client, guide_client, issuer, github_policy
):
    settings.RATE_LIMIT_TOKEN_FAILURES = "2/m"
    settings.REDIS_URL = None
    address = f"10.9.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    bad = issuer.github_token("https://elsewhere.example")
    for _ in range(2):
        response = grant(client, bad, guide_client.client_id, address=address)
        assert response.status_code == 400
    locked = grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id, address=address)
    assert_oauth_error(locked, 429, "temporarily_unavailable")
    # A success in between gives its slot back: it never counts.
    other = f"10.8.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    for _ in range(3):
        ok = grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id, address=other)
        assert ok.status_code == 200


# --- Kubernetes: a static JWKS for a cluster issuer behind a firewall ----------------------------


@pytest.fixture
def k8s_policy(guide_client):
    return trust_policy_create(
        actor=SYSTEM,
        client=guide_client.client,
        name="cluster deployer",
        issuer=K8S_ISSUER,
        jwks={"keys": [public_jwk(rsa_key(20), kid="cluster-key")]},
        audience="https://auth.acme.test",
        subject="system:serviceaccount:deploy:deployer",
        claim_conditions=[{"claim": "kubernetes.io.namespace", "value": "deploy"}],
        max_token_age=3600,
    )


def _k8s_token(**overrides) -> str:
    claims = kubernetes_claims(K8S_ISSUER, "https://auth.acme.test", **overrides)
    return jwt.encode(claims, rsa_key(20), algorithm="RS256", headers={"kid": "cluster-key"})


@pytest.mark.parametrize("send", [grant, assertion])
def test_a_kubernetes_token_passes_a_static_jwks_policy(client, guide_client, k8s_policy, send):
    response = send(client, _k8s_token(), guide_client.client_id)
    assert response.status_code == 200, response.content
    claims = decode(response.json()["access_token"], client)
    assert claims["act"] == {"iss": K8S_ISSUER, "sub": "system:serviceaccount:deploy:deployer"}


def test_a_kubernetes_token_of_another_namespace_is_refused(client, guide_client, k8s_policy):
    other = kubernetes_claims(K8S_ISSUER, "x")["kubernetes.io"] | {"namespace": "default"}
    body = assert_oauth_error(
        grant(client, _k8s_token(**{"kubernetes.io": other}), guide_client.client_id),
        400,
        "invalid_grant",
    )
    assert body["error_description"] == (
        "the external token's kubernetes.io.namespace claim does not match the policy"
    )


def test_a_kubernetes_token_signed_by_another_key_is_refused(client, guide_client, k8s_policy):
    claims = kubernetes_claims(K8S_ISSUER, "https://auth.acme.test")
    token = jwt.encode(claims, rsa_key(21), algorithm="RS256", headers={"kid": "cluster-key"})
    body = assert_oauth_error(grant(client, token, guide_client.client_id), 400, "invalid_grant")
    assert body["error_description"] == federation.NO_KEY


# --- The request's own shape ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "description"),
    [
        ({"client_id": "m2morg_12345678901234567"}, "assertion is required: the external token"),
        ({"assertion": "x.y.z"}, "client_id is required: it selects the trust policies"),
        (
            {"assertion": "x.y.z", "client_id": "m2morg_1", "client_secret": "s"},
            "the jwt-bearer grant takes the external token as assertion, and client_id; "
            "no other client authentication",
        ),
    ],
)
def test_a_malformed_grant_request_is_invalid_request(client, form, description):
    body = assert_oauth_error(
        post_form(client, "/oauth/token", {"grant_type": GRANT, **form}), 400, "invalid_request"
    )
    assert body["error_description"] == description


def test_discovery_names_the_jwt_bearer_grant(client):
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert GRANT in body["grant_types_supported"]


# --- The kit's ClientCredentials with federated_token, against this server over HTTP -----------


@pytest.mark.django_db(transaction=True)
def test_the_kit_trades_a_projected_token_file_for_an_access_token(live_server, tmp_path, org):
    client, _secret = client_create(actor=SYSTEM, organization=org, name="deployer")
    trust_policy_create(
        actor=SYSTEM,
        client=client,
        name="cluster deployer",
        issuer=K8S_ISSUER,
        jwks={"keys": [public_jwk(rsa_key(20), kid="cluster-key")]},
        audience="https://auth.acme.test",
        subject="system:serviceaccount:deploy:deployer",
        max_token_age=3600,
    )
    path = tmp_path / "token"
    path.write_text(_k8s_token())
    credentials = ClientCredentials(
        f"{live_server.url}/oauth/token", client.id, federated_token=path
    )
    claims = jwt.decode(credentials.token(), options={"verify_signature": False})
    assert claims["client_id"] == client.id and claims["act"]["iss"] == K8S_ISSUER


def test_a_federated_token_reads_the_organizations_quota_with_the_client(
    client, guide_client, issuer, github_policy
):
    """The organization's quota caps come joined to the client's row, not by one more query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clients.services import organization_update

    organization_update(
        actor=SYSTEM, organization=guide_client.client.organization, token_quota={"per_hour": 50}
    )
    with CaptureQueriesContext(connection) as queries:
        response = grant(client, issuer.github_token(OUR_ISSUER), guide_client.client_id)
    assert response.status_code == 200, response.content
    assert response["RateLimit-Policy"]  # the organization's cap was applied
    alone = [q["sql"] for q in queries if 'FROM "clients_organization"' in q["sql"]]
    assert alone == []
