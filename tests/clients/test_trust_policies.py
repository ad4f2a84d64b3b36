"""Trust policies (clients.trust, clients.services.trust): what a policy may say, the limit per
client, audit events, and the wildcard rule."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from clients.models import AuditEvent, TrustPolicy
from clients.services import trust_policy_create, trust_policy_delete, trust_policy_update
from clients.trust import MAX_POLICIES_PER_CLIENT, claim_value, pattern_matches
from tests.assertion_helpers import public_jwk, rsa_key
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

GITHUB = "https://token.actions.githubusercontent.com"


def create(client, **fields):
    return trust_policy_create(
        actor=SYSTEM,
        client=client,
        **{"name": "deploy", "issuer": GITHUB, "subject": "repo:acmecorp/*", **fields},
    )


def errors_of(client, **fields) -> dict:
    before = TrustPolicy.objects.count()
    with pytest.raises(ValidationError) as caught:
        create(client, **fields)
    assert TrustPolicy.objects.count() == before  # a refused policy changes nothing
    return caught.value.message_dict


def test_a_policy_gets_a_tp_id_defaults_and_an_audit_event(guide_client):
    policy = create(guide_client.client)
    assert policy.id.startswith("tp_")
    assert policy.audience == "http://127.0.0.1:8000" and policy.max_token_age == 300
    event = AuditEvent.objects.get(action="trust_policy.create")
    assert event.target_id == policy.id and event.client_id == guide_client.client_id
    assert event.details == {"name": "deploy", "issuer": GITHUB}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"subject": "", "claim_conditions": []}, "subject", "every workload of the issuer"),
        ({"issuer": "http://token.actions.githubusercontent.com"}, "issuer", "https://"),
        ({"issuer": "https://user:pw@issuer.example"}, "issuer", "no credentials"),
        ({"issuer": ""}, "issuer", "issuer is required"),
        ({"issuer": "not a url"}, "issuer", "issuer is at most"),
        ({"subject": "*"}, "subject", "more than wildcards"),
        ({"subject": "*:*"}, "subject", "more than wildcards"),
        ({"subject": " repo:x"}, "subject", "outer spaces"),
        ({"audience": ""}, "audience", "non-empty"),
        ({"max_token_age": 0}, "max_token_age", "1 to 86400"),
        ({"max_token_age": 86401}, "max_token_age", "1 to 86400"),
        ({"name": ""}, "name", "required"),
        ({"claim_conditions": "x"}, "claim_conditions", "a list"),
        ({"claim_conditions": [{"claim": "a"}]}, "claim_conditions[0]", "exactly claim and value"),
        (
            {"claim_conditions": [{"claim": "sub", "value": "x"}]},
            "claim_conditions[0].claim",
            "policy's own fields",
        ),
        (
            {"claim_conditions": [{"claim": "a b", "value": "x"}]},
            "claim_conditions[0].claim",
            "a claim name",
        ),
        (
            {"claim_conditions": [{"claim": "env", "value": "*"}]},
            "claim_conditions[0].value",
            "more than wildcards",
        ),
        (
            {"claim_conditions": [{"claim": "e", "value": "a"}, {"claim": "e", "value": "b"}]},
            "claim_conditions[1].claim",
            "duplicate",
        ),
        ({"jwks": {"keys": "no"}}, "jwks", "JWK Set"),
        ({"jwks": {"keys": []}}, "jwks.keys", "1 to 20 keys"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "jwks.keys[0]", "private"),
    ],
)
def test_bad_policies_are_refused_by_field(guide_client, fields, field, message):
    errors = errors_of(guide_client.client, **fields)
    assert field in errors, errors
    assert any(message in text for text in errors[field]), errors[field]


def test_a_static_jwks_needs_no_https_issuer_and_keeps_public_members_only(guide_client):
    jwk = public_jwk(rsa_key(20), kid="cluster")
    policy = create(
        guide_client.client,
        issuer="kubernetes/serviceaccount",
        jwks={"keys": [{**jwk, "x5c": ["ignored"]}]},
        subject="system:serviceaccount:deploy:deployer",
    )
    (stored,) = policy.jwks["keys"]
    assert set(stored) == {"kty", "n", "e", "kid", "use", "alg"}
    assert (stored["n"], stored["kid"]) == (jwk["n"], "cluster")


def test_a_claim_condition_alone_is_enough(guide_client):
    policy = create(
        guide_client.client,
        subject="",
        claim_conditions=[{"claim": "repository_owner", "value": "acmecorp"}],
    )
    assert policy.subject == ""


def test_a_client_holds_at_most_ten_policies(guide_client):
    for i in range(MAX_POLICIES_PER_CLIENT):
        create(guide_client.client, name=f"p{i}")
    with pytest.raises(ValidationError, match="at most 10 trust policies"):
        create(guide_client.client, name="one too many")
    assert TrustPolicy.objects.count() == MAX_POLICIES_PER_CLIENT


def test_update_validates_and_audits_the_changed_fields(guide_client):
    policy = create(guide_client.client)
    trust_policy_update(actor=SYSTEM, policy=policy, subject="repo:acmecorp/api:*", name="deploy")
    event = AuditEvent.objects.get(action="trust_policy.update")
    assert event.details["changed"] == ["subject"]
    with pytest.raises(ValidationError):
        trust_policy_update(actor=SYSTEM, policy=policy, subject="", claim_conditions=[])
    assert TrustPolicy.objects.get().subject == "repo:acmecorp/api:*"
    with pytest.raises(ValidationError):
        trust_policy_update(actor=SYSTEM, policy=policy, client_id="elsewhere")


def test_delete_is_audited_once(guide_client):
    policy = create(guide_client.client)
    trust_policy_delete(actor=SYSTEM, policy=policy)
    trust_policy_delete(actor=SYSTEM, policy=policy)
    assert AuditEvent.objects.filter(action="trust_policy.delete").count() == 1


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("repo:acmecorp/*:ref:refs/heads/main", "repo:acmecorp/api:ref:refs/heads/main", True),
        ("repo:acmecorp/*:ref:refs/heads/main", "repo:acmecorp/api:ref:refs/heads/dev", False),
        # A wildcard never spans a colon: no other field can slip in.
        ("repo:acmecorp/*:ref:refs/heads/main", "repo:acmecorp/a:x:ref:refs/heads/main", False),
        ("repo:acmecorp/*", "repo:acmecorp/api:environment:production", False),
        ("repo:acmecorp/*:*", "repo:acmecorp/api:environment", True),
        ("acmecorp", "acmecorp", True),
        ("acmecorp", "acmecorp2", False),
        ("acme.corp", "acmeXcorp", False),  # not a regular expression
        ("refs/heads/release-*", "refs/heads/release-1.2", True),
    ],
)
def test_wildcards(pattern, value, matches):
    assert pattern_matches(pattern, value) is matches


def test_a_dotted_claim_reaches_into_kubernetes_objects():
    claims = {"kubernetes.io": {"namespace": "deploy", "serviceaccount": {"name": "bot"}}}
    assert claim_value(claims, "kubernetes.io.namespace") == "deploy"
    assert claim_value(claims, "kubernetes.io.serviceaccount.name") == "bot"
    assert claim_value(claims, "kubernetes.io.pod") is None
