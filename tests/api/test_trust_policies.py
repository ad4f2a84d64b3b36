"""Trust policies through the management API: …/clients/{client_id}/trust-policies."""

from __future__ import annotations

import re

import pytest

from clients.models import AuditEvent, TrustPolicy
from tests.api.test_views import RFC3339, assert_error, violations
from tests.assertion_helpers import public_jwk, rsa_key

pytestmark = pytest.mark.django_db

GITHUB = "https://token.actions.githubusercontent.com"
POLICY = {
    "name": "GitHub deploy",
    "issuer": GITHUB,
    "subject": "repo:acmecorp/*:environment:production",
    "claim_conditions": [
        {"claim": "repository_owner", "value": "acmecorp"},
        {"claim": "environment", "value": "production"},
    ],
}


def policies_path(creds) -> str:
    org = creds.client.organization_id
    return f"/organizations/{org}/clients/{creds.client_id}/trust-policies"


def state() -> tuple:
    return (
        list(TrustPolicy.objects.order_by("id").values()),
        AuditEvent.objects.filter(action__startswith="trust_policy").count(),
    )


def test_it_creates_a_policy_in_the_documented_shape(api, guide_client):
    response = api.call("post", policies_path(guide_client), POLICY)
    assert response.status_code == 201, response.content
    policy = response.json()["trust_policy"]
    assert list(policy) == [
        "id", "name", "issuer", "jwks", "audience", "subject", "claim_conditions",
        "max_token_age", "create_time", "update_time",
    ]  # fmt: skip
    assert re.fullmatch(r"tp_\d{17}", policy["id"])
    assert policy["jwks"] is None and policy["audience"] == "http://127.0.0.1:8000"
    assert policy["max_token_age"] == 300
    assert policy["claim_conditions"] == POLICY["claim_conditions"]
    assert RFC3339.match(policy["create_time"]) and RFC3339.match(policy["update_time"])
    event = AuditEvent.objects.get(action="trust_policy.create")
    assert event.target_id == policy["id"] and event.actor_type == "client"


def test_list_get_patch_delete(api, guide_client):
    path = policies_path(guide_client)
    created = api.call("post", path, POLICY).json()["trust_policy"]
    listed = api.call("get", path).json()
    assert listed == {"trust_policies": [created]}
    one = f"{path}/{created['id']}"
    assert api.call("get", one).json() == {"trust_policy": created}
    patched = api.call("patch", one, {"max_token_age": 600, "subject": ""})
    assert patched.status_code == 200, patched.content
    body = patched.json()["trust_policy"]
    assert (body["max_token_age"], body["subject"], body["name"]) == (600, "", "GitHub deploy")
    assert api.call("delete", one).json() == {}
    assert_error(api.call("get", one), 404, 5)
    assert_error(api.call("delete", one), 404, 5)
    assert api.call("get", path).json() == {"trust_policies": []}


def test_a_static_jwks_policy_for_kubernetes(api, guide_client):
    jwk = public_jwk(rsa_key(20), kid="cluster")
    body = {
        "name": "cluster",
        "issuer": "https://kubernetes.default.svc.cluster.local",
        "jwks": {"keys": [jwk]},
        "audience": "https://auth.acme.test",
        "subject": "system:serviceaccount:deploy:deployer",
        "max_token_age": 3600,
    }
    response = api.call("post", policies_path(guide_client), body)
    assert response.status_code == 201, response.content
    assert response.json()["trust_policy"]["jwks"]["keys"][0]["n"] == jwk["n"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": "", "claim_conditions": []}, "subject"),
        ({"issuer": "http://insecure.example"}, "issuer"),
        ({"issuer": 42}, "issuer"),
        ({"subject": "*"}, "subject"),
        ({"max_token_age": "300"}, "max_token_age"),
        ({"max_token_age": 0}, "max_token_age"),
        ({"claim_conditions": [{"claim": "iss", "value": "x"}]}, "claim_conditions[0].claim"),
        ({"claim_conditions": [{"claim": "a", "value": "b", "c": "d"}]}, "claim_conditions"),
        ({"jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "x"}]}}, "jwks.keys[0]"),
        ({"color": "blue"}, "color"),
    ],
)
def test_bad_input_is_a_400_with_field_violations_and_changes_nothing(
    api, guide_client, change, field
):
    before = state()
    body = assert_error(api.call("post", policies_path(guide_client), {**POLICY, **change}), 400, 3)
    assert any(name.startswith(field) for name in violations(body)), violations(body)
    assert state() == before


def test_a_bad_patch_changes_nothing(api, guide_client):
    path = policies_path(guide_client)
    created = api.call("post", path, POLICY).json()["trust_policy"]
    before = state()
    body = assert_error(
        api.call("patch", f"{path}/{created['id']}", {"subject": "", "claim_conditions": []}),
        400,
        3,
    )
    assert "subject" in violations(body)
    assert state() == before


def test_a_client_holds_at_most_ten_policies(api, guide_client):
    for i in range(10):
        response = api.call("post", policies_path(guide_client), {**POLICY, "name": f"p{i}"})
        assert response.status_code == 201
    before = state()
    body = assert_error(
        api.call("post", policies_path(guide_client), POLICY), 400, 9, "FAILED_PRECONDITION"
    )
    assert "10" in body["message"]
    assert state() == before


def test_another_organizations_policies_are_404(api, guide_client, other_client):
    theirs = api.call("post", policies_path(other_client), POLICY).json()["trust_policy"]
    wrong = f"/organizations/{guide_client.client.organization_id}/clients/{other_client.client_id}"
    assert_error(api.call("get", f"{wrong}/trust-policies"), 404, 5)
    assert_error(api.call("post", f"{wrong}/trust-policies", POLICY), 404, 5)
    # Another client's policy id under our client: unknown.
    ours = f"{policies_path(guide_client)}/{theirs['id']}"
    for method in ("get", "delete"):
        assert_error(api.call(method, ours), 404, 5)
    assert_error(api.call("patch", ours, {"name": "mine"}), 404, 5)
    assert TrustPolicy.objects.get(pk=theirs["id"]).name == "GitHub deploy"


def test_it_needs_a_management_token(api, guide_client):
    response = api.call("get", policies_path(guide_client), token=None)
    assert response.status_code == 401
