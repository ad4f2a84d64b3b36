"""RFC 8414 metadata and the JWKS: what verifiers and client libraries read."""

from __future__ import annotations

import pytest

from clients.services import api_resource_create
from oauth import keys
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def test_metadata_names_every_endpoint(client, settings):
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    body = response.json()
    issuer = settings.OAUTH["ISSUER"]
    assert body["issuer"] == issuer
    assert body["token_endpoint"] == f"{issuer}/oauth/token"
    assert body["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert body["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert body["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert body["grant_types_supported"] == [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ]
    assert body["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    assert "none" not in body["token_endpoint_auth_signing_alg_values_supported"]
    assert response["Cache-Control"].startswith("public")


def test_scopes_supported_lists_the_catalog(client):
    api_resource_create(
        actor=SYSTEM,
        audience="deployment-api.acmecorp.com",
        name="Deployment API",
        scopes=[("deploy:applications", "Deploy"), ("read:deployments", "Read")],
    )
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert body["scopes_supported"] == ["management", "deploy:applications", "read:deployments"]


def test_jwks_publishes_public_members_only(client):
    keys.ensure_signing_key()
    keys.rotate_signing_key(algorithm="ES256")
    body = client.get("/.well-known/jwks.json").json()
    assert len(body["keys"]) == 2
    for jwk in body["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
        assert jwk["use"] == "sig"
    assert client.get("/keys").json() == body


@pytest.mark.parametrize(
    "path", ["/.well-known/jwks.json", "/.well-known/oauth-authorization-server"]
)
def test_only_get_and_head(client, path):
    assert client.post(path).status_code == 405
    assert client.head(path).status_code == 200
