"""Third-party OAuth clients and JWT libraries that none of us wrote, against a real server.

Authlib's OAuth2Session obtains tokens with client_secret_basic, client_secret_post and
private_key_jwt (its own assertion, one hour long by default), introspects and revokes them;
an assertion signed with PyJWT, as the README shows, gets one token and no second; plain HTTP
introspection answers as RFC 7662 says; joserfc and PyJWT's PyJWKClient verify the tokens
through our discovery and JWKS.
"""

from __future__ import annotations

import json

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.assertion_helpers import ASSERTION_TYPE, Signer, ec_key, public_jwk
from tests.conftest import GUIDE_CLIENT
from tests.e2e.server import running_server

pytestmark = pytest.mark.e2e

AUDIENCE = "deployment-api.acmecorp.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("interop")) as process:
        yield process


@pytest.fixture(scope="module")
def metadata(server) -> dict:
    return requests.get(f"{server.url}/.well-known/oauth-authorization-server", timeout=10).json()


@pytest.fixture(scope="module")
def registered(server, metadata):
    """The guide's client, a management client, and an RSA key registered for private_key_jwt."""
    management = json.loads(server.manage("create_management_client", "--name", "interop").stdout)
    admin = OAuth2Session(management["client_id"], management["client_secret"])
    admin.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    api = f"{server.url}/api/v1"
    org = admin.post(f"{api}/organizations", json={"display_name": "Acme"}).json()["organization"]
    created = admin.post(f"{api}/organizations/{org['id']}/clients", json=GUIDE_CLIENT).json()
    client_id = created["client"]["client_id"]
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    response = admin.post(
        f"{api}/organizations/{org['id']}/clients/{client_id}/keys", json={"jwk": rsa_jwk}
    )
    assert response.status_code == 201, response.text
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "org_id": org["id"],
        "client_id": client_id,
        "secret": created["plain_secret"],
        "pem": pem,
        "management": management,
        "admin": admin,
    }


def verify_with_joserfc(token: str, server, metadata) -> dict:
    jwks = requests.get(metadata["jwks_uri"], timeout=10).json()
    decoded = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": server.url},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
    ).validate(decoded.claims)
    return decoded.claims


def verify_with_pyjwt(token: str, server, metadata) -> dict:
    key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=server.url)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_gets_a_token_with_a_secret(server, metadata, registered, method):
    session = OAuth2Session(
        registered["client_id"],
        registered["secret"],
        token_endpoint_auth_method=method,
        scope="read:deployments",
    )
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "read:deployments"
    for verify in (verify_with_joserfc, verify_with_pyjwt):
        claims = verify(token["access_token"], server, metadata)
        assert claims["client_id"] == registered["client_id"]
        assert claims["scopes"] == ["read:deployments"]


def test_authlib_gets_a_token_with_private_key_jwt(server, metadata, registered):
    session = OAuth2Session(
        registered["client_id"],
        registered["pem"],
        token_endpoint_auth_method=PrivateKeyJWT(metadata["token_endpoint"]),
    )
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    claims = verify_with_joserfc(token["access_token"], server, metadata)
    assert claims["sub"] == registered["client_id"]
    assert claims["scopes"] == GUIDE_CLIENT["scopes"]


def test_authlib_introspects_and_revokes(server, metadata, registered):
    session = OAuth2Session(registered["client_id"], registered["secret"])
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    access_token = token["access_token"]
    answer = session.introspect_token(metadata["introspection_endpoint"], token=access_token)
    assert answer.status_code == 200 and answer.json()["active"] is True
    assert answer.json()["client_id"] == registered["client_id"]
    revoked = session.revoke_token(metadata["revocation_endpoint"], token=access_token)
    assert revoked.status_code == 200
    answer = session.introspect_token(metadata["introspection_endpoint"], token=access_token)
    assert answer.json() == {"active": False}


def test_introspection_over_http(server, registered):
    """The README's curl, with requests: the RFC 7662 fields, and who may ask."""
    customer = (registered["client_id"], registered["secret"])
    management = registered["management"]
    token = server.access_token(*customer)
    own = requests.post(
        f"{server.url}/oauth/introspect", data={"token": token}, auth=customer, timeout=10
    )
    assert own.status_code == 200 and own.headers["Cache-Control"] == "no-store"
    body = own.json()
    assert body["active"] is True and body["iss"] == server.url
    assert body["client_id"] == registered["client_id"] and body["oid"] == registered["org_id"]
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


def test_private_key_jwt_over_http(server, registered):
    """As the README shows it: an EC key registered through the management API, an assertion
    signed with PyJWT; the same assertion a second time is a replay."""
    key = ec_key()
    path = f"/api/v1/organizations/{registered['org_id']}/clients/{registered['client_id']}/keys"
    response = registered["admin"].post(
        f"{server.url}{path}", json={"jwk": public_jwk(key, kid="deploy-2026")}
    )
    assert response.status_code == 201, response.text
    signer = Signer(key, "ES256", "deploy-2026")
    assertion = signer.assertion(registered["client_id"], aud=f"{server.url}/oauth/token")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    first = requests.post(f"{server.url}/oauth/token", data=form, timeout=10)
    assert first.status_code == 200, first.text
    claims = jwt.decode(first.json()["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == registered["client_id"]
    replay = requests.post(f"{server.url}/oauth/token", data=form, timeout=10)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"


def test_authlib_sees_a_wrong_secret_as_invalid_client(metadata, registered):
    session = OAuth2Session(registered["client_id"], registered["secret"] + "x")
    with pytest.raises(Exception) as caught:
        session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert "invalid_client" in str(caught.value)
