"""The guide, step by step, against a real server process over HTTP."""

from __future__ import annotations

import json

import jwt
import pytest
import requests

from tests.conftest import GUIDE_CLIENT
from tests.e2e.server import child_env, manage, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("guide")) as process:
        yield process


@pytest.fixture(scope="module")
def management(server):
    result = server.manage("create_management_client", "--name", "walkthrough")
    credentials = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert set(credentials) == {"client_id", "client_secret"}
    return credentials


def test_the_whole_flow_of_the_guide(server, management):
    api = requests.Session()
    management_token = server.access_token(management["client_id"], management["client_secret"])
    api.headers["Authorization"] = f"Bearer {management_token}"

    # 1. An organization for the customer.
    response = api.post(
        f"{server.url}/api/v1/organizations", json={"display_name": "Acme Corp"}, timeout=10
    )
    assert response.status_code == 201, response.text
    org_id = response.json()["organization"]["id"]

    # 2. Register the guide's client; the secret is in this response only.
    response = api.post(
        f"{server.url}/api/v1/organizations/{org_id}/clients", json=GUIDE_CLIENT, timeout=10
    )
    assert response.status_code == 201, response.text
    body = response.json()
    client_id, plain_secret = body["client"]["client_id"], body["plain_secret"]

    # 3. The client trades its credentials for a token (the guide's curl: client_secret_post).
    response = requests.post(
        f"{server.url}/oauth/token",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": plain_secret,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert token["scope"] == "deploy:applications read:deployments"

    # 4. The API server verifies it with the JWKS, found through discovery.
    metadata = requests.get(
        f"{server.url}/.well-known/oauth-authorization-server", timeout=10
    ).json()
    assert metadata["issuer"] == server.url
    assert metadata["token_endpoint"] == f"{server.url}/oauth/token"
    jwks_client = jwt.PyJWKClient(metadata["jwks_uri"])
    signing_key = jwks_client.get_signing_key_from_jwt(token["access_token"])
    claims = jwt.decode(
        token["access_token"],
        signing_key.key,
        algorithms=["RS256"],
        audience="deployment-api.acmecorp.com",
        issuer=server.url,
    )
    assert claims["client_id"] == claims["sub"] == client_id
    assert claims["oid"] == org_id
    assert claims["scopes"] == ["deploy:applications", "read:deployments"]

    # Rotation without downtime, then the old secret stops working.
    secrets_url = f"{server.url}/api/v1/organizations/{org_id}/clients/{client_id}/secrets"
    new = api.post(secrets_url, timeout=10).json()
    old_id = next(
        s["id"]
        for s in api.get(secrets_url, timeout=10).json()["secrets"]
        if s["id"] != new["secret"]["id"]
    )
    assert api.delete(f"{secrets_url}/{old_id}", timeout=10).json() == {}
    refused = requests.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, plain_secret),
        timeout=10,
    )
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    accepted = requests.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, new["plain_secret"]),
        timeout=10,
    )
    assert accepted.status_code == 200

    # The server's own log never shows a secret.
    log = server.log_text()
    for secret in (plain_secret, new["plain_secret"], management["client_secret"]):
        assert secret not in log


def test_jwks_and_alias(server):
    jwks = requests.get(f"{server.url}/.well-known/jwks.json", timeout=10)
    assert jwks.status_code == 200
    assert jwks.headers["Cache-Control"].startswith("public, max-age=")
    assert requests.get(f"{server.url}/keys", timeout=10).json() == jwks.json()
    for key in jwks.json()["keys"]:
        assert set(key) == {"kty", "kid", "use", "alg", "n", "e"}
        assert key["use"] == "sig" and key["alg"] == "RS256"


def test_production_settings_refuse_a_missing_secret_key():
    env = child_env(DJANGO_SETTINGS_MODULE="portal.settings")
    for name in ("SECRET_KEY", "DEBUG"):
        env.pop(name, None)
    result = manage(env, "check", check=False)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
