"""TokenVerifier against a real server: keys found by discovery, claims, refusals."""

from __future__ import annotations

import pytest

from m2m_auth_kit import ClientCredentials, InvalidToken, TokenVerifier

from .conftest import AUDIENCE, GUIDE_CLIENT


@pytest.fixture
def token(server, mgmt, org):
    created = mgmt.clients.create(org.id, **GUIDE_CLIENT)
    credentials = ClientCredentials(
        server.token_url, created.client.client_id, created.plain_secret
    )
    return created.client, credentials.token()


def test_a_token_of_the_server_verifies_in_three_lines(server, org, token):
    client, access_token = token

    verifier = TokenVerifier(server.url, audience=AUDIENCE)
    claims = verifier.verify(access_token)

    assert claims.client_id == client.client_id
    assert claims.organization_id == org.id
    assert claims.has_scopes("deploy:applications", "read:deployments")
    assert claims.raw["github_repository"] == "acmecorp/inventory-service"


def test_another_audience_is_refused(server, token):
    with pytest.raises(InvalidToken, match="not meant for this audience"):
        TokenVerifier(server.url, audience="billing.acmecorp.com").verify(token[1])


def test_a_tampered_token_is_refused(server, token):
    header, payload, signature = token[1].split(".")
    forged = ".".join(
        (header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB"))
    )

    with pytest.raises(InvalidToken):
        TokenVerifier(server.url, audience=AUDIENCE).verify(forged)


def test_another_issuer_is_refused(server, token):
    verifier = TokenVerifier(
        "https://auth.example.com",
        audience=AUDIENCE,
        jwks_url=f"{server.url}/.well-known/jwks.json",
    )

    with pytest.raises(InvalidToken, match="untrusted issuer"):
        verifier.verify(token[1])
