"""ManagementClient against a real server: the guide's walkthrough, every resource, paging,
its own token, and the API's errors as ManagementAPIError."""

from __future__ import annotations

import math

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from m2m_auth_kit import ClientCredentials, TokenRequestError, TokenVerifier
from m2m_auth_kit.management import (
    CustomClaim,
    FieldViolation,
    ManagementAPIError,
    ManagementClient,
)

from .conftest import AUDIENCE, GUIDE_CLIENT


def proxied(server, proxy) -> ManagementClient:
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"http": proxy.url}
    return ManagementClient(
        server.url, server.mgmt_client_id, server.mgmt_client_secret, session=session
    )


def test_the_guides_walkthrough(server, mgmt):
    # 1. An organization for the customer.
    org = mgmt.organizations.create("Acme Corp", external_id="acme-1")
    assert mgmt.organizations.get(org.id) == org

    # 2. Its client; the secret comes this once.
    created = mgmt.clients.create(org.id, **GUIDE_CLIENT)
    client = created.client
    assert client.organization_id == org.id
    assert client.scopes == ["deploy:applications", "read:deployments"]
    assert client.custom_claims[0] == CustomClaim("github_repository", "acmecorp/inventory-service")
    assert [s.secret_suffix for s in client.secrets] == [created.plain_secret[-4:]]
    assert created.plain_secret not in repr(created)

    # 3. A token with it (the guide's curl sends the secret in the form), verified by the API.
    caller = ClientCredentials(
        server.token_url,
        client.client_id,
        created.plain_secret,
        auth_method="client_secret_post",
    )
    claims = TokenVerifier(server.url, audience=AUDIENCE).verify(caller.token())
    assert claims.client_id == client.client_id and claims.organization_id == org.id

    # 4. Rotation: a second secret, then the first one goes.
    rotated = mgmt.secrets.add(org.id, client.client_id, expiry_seconds=86400)
    assert rotated.secret.expire_time is not None
    assert {s.id for s in mgmt.secrets.list(org.id, client.client_id)} == {
        client.secrets[0].id,
        rotated.secret.id,
    }
    mgmt.secrets.delete(org.id, client.client_id, client.secrets[0].id)
    caller.invalidate()
    with pytest.raises(TokenRequestError) as refused:
        caller.token()
    assert refused.value.error == "invalid_client"
    new_caller = ClientCredentials(server.token_url, client.client_id, rotated.plain_secret)
    assert new_caller.token()

    # 5. Delete the client: its secret stops working, the client is gone.
    mgmt.clients.delete(org.id, client.client_id)
    new_caller.invalidate()
    with pytest.raises(TokenRequestError):
        new_caller.token()
    with pytest.raises(ManagementAPIError) as gone:
        mgmt.clients.get(org.id, client.client_id)
    assert (gone.value.status_code, gone.value.code, gone.value.error_code) == (404, 5, "NOT_FOUND")


def test_organizations_list_every_page_as_an_iterator(server, mgmt, proxy):
    made = [mgmt.organizations.create(f"paging {n}").id for n in range(3)]
    api = proxied(server, proxy)

    listed = [o.id for o in api.organizations.list(page_size=2)]

    total = api.request("GET", "/organizations", query={"page_size": 1})["total_size"]
    assert len(listed) == len(set(listed)) == total
    assert listed[-3:] == made  # oldest first
    pages = [u for m, u, _ in proxy.seen if m == "GET" and "page_size=2" in u]
    assert len(pages) == math.ceil(total / 2)


def test_organizations_update(mgmt, org):
    updated = mgmt.organizations.update(org.id, display_name="Renamed")

    assert updated.display_name == "Renamed" and updated.id == org.id
    assert mgmt.organizations.get(org.id).display_name == "Renamed"


def test_clients_list_update_and_tenancy(mgmt, org):
    names = ["one", "two", "three"]
    ids = [mgmt.clients.create(org.id, name=name).client.client_id for name in names]

    assert [c.name for c in mgmt.clients.list(org.id, page_size=2)] == names

    updated = mgmt.clients.update(
        org.id, ids[0], scopes=["read:deployments"], custom_claims=[{"key": "k", "value": "v"}]
    )
    assert updated.scopes == ["read:deployments"] and updated.name == "one"
    assert mgmt.clients.get(org.id, ids[0]).custom_claims == [CustomClaim("k", "v")]

    other = mgmt.organizations.create("Another Corp")
    with pytest.raises(ManagementAPIError) as caught:
        mgmt.clients.get(other.id, ids[0])
    assert caught.value.error_code == "NOT_FOUND"
    assert list(mgmt.clients.list(other.id)) == []


def test_public_keys_add_list_delete(mgmt, org):
    client_id = mgmt.clients.create(org.id, name="signer").client.client_id
    public = RSAAlgorithm.to_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), as_dict=True
    )

    key = mgmt.keys.add(org.id, client_id, {**public, "kid": "k1"})

    assert (key.kid, key.kty, key.alg) == ("k1", "RSA", "RS256")
    assert mgmt.keys.list(org.id, client_id) == [key]
    assert [k.id for k in mgmt.clients.get(org.id, client_id).keys] == [key.id]
    mgmt.keys.delete(org.id, client_id, key.id)
    assert mgmt.keys.list(org.id, client_id) == []
    with pytest.raises(ManagementAPIError) as caught:
        mgmt.keys.delete(org.id, client_id, key.id)
    assert caught.value.code == 5


# --- Its own token -------------------------------------------------------------------------------


def test_one_token_serves_many_calls_and_a_rejected_one_is_replaced(server, proxy):
    api = proxied(server, proxy)
    for _ in range(3):
        api.organizations.create("token reuse")
    assert [u for m, u, _ in proxy.seen if m == "POST"].count(server.token_url) == 1

    # The API stops accepting the token (as after a revocation): one new token, one retry.
    api.credentials._cached = ("not.a.token", float("inf"))
    api.organizations.create("after rejection")

    token_posts = [u for m, u, _ in proxy.seen if m == "POST" and u == server.token_url]
    assert len(token_posts) == 2


# --- Errors --------------------------------------------------------------------------------------


def test_invalid_fields_carry_the_apis_field_violations(mgmt, org):
    with pytest.raises(ManagementAPIError) as caught:
        mgmt.clients.create(org.id, name="deployer", scopes=["ok", "not ok"])

    error = caught.value
    assert (error.status_code, error.code, error.error_code) == (400, 3, "INVALID_ARGUMENT")
    assert error.message == "request has invalid fields"
    [violation] = error.field_violations
    assert isinstance(violation, FieldViolation)
    assert violation.field == "scopes[1]" and "scope token" in violation.description
    assert "scopes[1]" in str(error)
    assert list(mgmt.clients.list(org.id)) == []  # nothing was created

    with pytest.raises(ManagementAPIError) as caught:
        mgmt.clients.update(org.id, "skc_0000000000", name="")
    assert caught.value.code == 5  # the client is looked up first: not found


def test_an_unknown_organization_is_not_found(mgmt):
    with pytest.raises(ManagementAPIError) as caught:
        mgmt.organizations.get("org_0000000000")

    assert (caught.value.status_code, caught.value.code) == (404, 5)
    assert caught.value.message == "not found"


def test_wrong_management_credentials_are_unauthenticated(server):
    api = ManagementClient(server.url, server.mgmt_client_id, "not-the-secret")

    with pytest.raises(ManagementAPIError) as caught:
        api.organizations.get("org_0000000000")

    assert (caught.value.status_code, caught.value.code) == (401, 16)
    assert isinstance(caught.value.__cause__, TokenRequestError)


def test_an_unreachable_server_is_unavailable(server):
    api = ManagementClient("http://127.0.0.1:9", "id", "secret", timeout=2)

    with pytest.raises(ManagementAPIError) as caught:
        api.organizations.get("org_0000000000")

    assert caught.value.status_code is None and caught.value.code == 14
