"""Introspection, revocation and private_key_jwt against a real server process over HTTP.

The resource-server kit in introspection mode refuses a revoked token; the same kit verifying
with the JWKS alone still accepts it (the documented limit of stateless verification).
"""

from __future__ import annotations

import json

import jwt
import pytest
import requests

from m2m_auth_kit.verify import InvalidToken, TokenVerifier
from tests.assertion_helpers import ASSERTION_TYPE, Signer, ec_key, public_jwk
from tests.conftest import GUIDE_CLIENT
from tests.e2e.server import running_server

pytestmark = pytest.mark.e2e

AUDIENCE = GUIDE_CLIENT["audience"][0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("beyond")) as process:
        yield process


@pytest.fixture(scope="module")
def management(server) -> dict[str, str]:
    result = server.manage("create_management_client", "--name", "beyond")
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def customer(server, management) -> dict[str, str]:
    """An organization and the guide's client, registered through the management API."""
    token = requests.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(management["client_id"], management["client_secret"]),
        timeout=10,
    ).json()["access_token"]
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    org = api.post(f"{server.url}/api/v1/organizations", json={"display_name": "Acme"}, timeout=10)
    org_id = org.json()["organization"]["id"]
    body = api.post(
        f"{server.url}/api/v1/organizations/{org_id}/clients", json=GUIDE_CLIENT, timeout=10
    ).json()
    return {
        "org_id": org_id,
        "client_id": body["client"]["client_id"],
        "client_secret": body["plain_secret"],
        "management_token": token,
    }


def client_token(server, customer) -> str:
    response = requests.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(customer["client_id"], customer["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_the_kit_in_introspect_mode_refuses_a_revoked_token(server, management, customer):
    token, unrelated = client_token(server, customer), client_token(server, customer)
    jwks_only = TokenVerifier(server.url, audience=AUDIENCE)
    introspecting = TokenVerifier(
        server.url,
        audience=AUDIENCE,
        introspect=True,
        client_id=management["client_id"],
        client_secret=management["client_secret"],
    )
    assert introspecting.verify(token).client_id == customer["client_id"]

    response = requests.post(
        f"{server.url}/oauth/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        auth=(customer["client_id"], customer["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"

    # A fresh verifier (no cached positive answer) sees the revocation at once...
    fresh = TokenVerifier(
        server.url,
        audience=AUDIENCE,
        introspect=True,
        client_id=management["client_id"],
        client_secret=management["client_secret"],
    )
    with pytest.raises(InvalidToken):
        fresh.verify(token)
    assert fresh.verify(unrelated).client_id == customer["client_id"]
    # ...while JWKS-only verification cannot know and still accepts the token.
    assert jwks_only.verify(token).client_id == customer["client_id"]


def test_introspection_over_http(server, management, customer):
    token = client_token(server, customer)
    own = requests.post(
        f"{server.url}/oauth/introspect",
        data={"token": token},
        auth=(customer["client_id"], customer["client_secret"]),
        timeout=10,
    )
    assert own.status_code == 200 and own.headers["Cache-Control"] == "no-store"
    body = own.json()
    assert body["active"] is True and body["iss"] == server.url
    assert body["client_id"] == customer["client_id"] and body["oid"] == customer["org_id"]
    garbage = requests.post(
        f"{server.url}/oauth/introspect",
        data={"token": "garbage"},
        auth=(management["client_id"], management["client_secret"]),
        timeout=10,
    )
    assert garbage.json() == {"active": False}
    unauthenticated = requests.post(
        f"{server.url}/oauth/introspect", data={"token": token}, timeout=10
    )
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "invalid_client"


def test_private_key_jwt_over_http(server, customer):
    key = ec_key()
    path = f"/api/v1/organizations/{customer['org_id']}/clients/{customer['client_id']}/keys"
    response = requests.post(
        f"{server.url}{path}",
        json={"jwk": public_jwk(key, kid="deploy-2026")},
        headers={"Authorization": f"Bearer {customer['management_token']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    signer = Signer(key, "ES256", "deploy-2026")
    assertion = signer.assertion(customer["client_id"], aud=f"{server.url}/oauth/token")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    first = requests.post(f"{server.url}/oauth/token", data=form, timeout=10)
    assert first.status_code == 200, first.text
    claims = jwt.decode(first.json()["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == customer["client_id"]
    replay = requests.post(f"{server.url}/oauth/token", data=form, timeout=10)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
