"""Client public keys through the management API: …/clients/{client_id}/keys."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from clients.models import AuditEvent, ClientKey
from tests.api.test_views import RFC3339, assert_error, violations
from tests.assertion_helpers import ec_key, private_jwk, public_jwk, rsa_key

pytestmark = pytest.mark.django_db


def keys_path(creds) -> str:
    return f"/organizations/{creds.client.organization_id}/clients/{creds.client_id}/keys"


def state() -> tuple:
    return (
        list(ClientKey.objects.order_by("id").values()),
        AuditEvent.objects.filter(action__startswith="client_key").count(),
    )


def rfc7638(jwk: dict) -> str:
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_it_registers_an_rsa_key_and_shows_public_members_only(api, guide_client):
    jwk = public_jwk(rsa_key(), kid="ci-2026")
    response = api.call("post", keys_path(guide_client), {"jwk": jwk})
    assert response.status_code == 201, response.content
    key = response.json()["key"]
    assert set(key) == {"id", "kid", "kty", "alg", "create_time", "jwk"}
    assert re.fullmatch(r"ckey_\d{17}", key["id"])
    assert (key["kid"], key["kty"], key["alg"]) == ("ci-2026", "RSA", "RS256")
    assert RFC3339.match(key["create_time"])
    assert key["jwk"] == {
        "kty": "RSA",
        "n": jwk["n"],
        "e": jwk["e"],
        "kid": "ci-2026",
        "use": "sig",
        "alg": "RS256",
    }
    event = AuditEvent.objects.get(action="client_key.create")
    assert event.target_id == key["id"] and event.client_id == guide_client.client_id
    assert event.actor_type == "client"


def test_the_kid_defaults_to_the_rfc7638_thumbprint(api, guide_client):
    jwk = public_jwk(rsa_key())
    assert "kid" not in jwk
    key = api.call("post", keys_path(guide_client), {"jwk": jwk}).json()["key"]
    assert key["kid"] == rfc7638(jwk)


def test_rfc7638_example_thumbprint():
    # RFC 7638 §3.1, the example key and its published thumbprint.
    from clients.jwk import thumbprint

    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    assert thumbprint({"kty": "RSA", "n": n, "e": "AQAB"}) == (
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    )


@pytest.mark.parametrize(("curve", "alg"), [(ec.SECP256R1(), "ES256"), (ec.SECP384R1(), "ES384")])
def test_it_registers_ec_keys(api, guide_client, curve, alg):
    jwk = public_jwk(ec_key(curve))
    key = api.call("post", keys_path(guide_client), {"jwk": jwk}).json()["key"]
    assert (key["kty"], key["alg"]) == ("EC", alg)
    assert set(key["jwk"]) == {"kty", "crv", "x", "y", "kid", "use", "alg"}


def test_an_rsa_key_may_name_another_rsa_algorithm(api, guide_client):
    jwk = public_jwk(rsa_key(), alg="PS256")
    key = api.call("post", keys_path(guide_client), {"jwk": jwk}).json()["key"]
    assert key["alg"] == "PS256"


def test_keys_are_listed_on_the_client_and_under_keys(api, guide_client):
    first = api.call("post", keys_path(guide_client), {"jwk": public_jwk(rsa_key(), kid="a")})
    second = api.call("post", keys_path(guide_client), {"jwk": public_jwk(ec_key(), kid="b")})
    listed = api.call("get", keys_path(guide_client)).json()["keys"]
    assert listed == [first.json()["key"], second.json()["key"]]
    client_path = keys_path(guide_client).removesuffix("/keys")
    assert api.call("get", client_path).json()["client"]["keys"] == listed
    org_path = f"/organizations/{guide_client.client.organization_id}/clients"
    assert api.call("get", org_path).json()["clients"][0]["keys"] == listed
    key_id = listed[0]["id"]
    assert api.call("get", f"{keys_path(guide_client)}/{key_id}").json() == {"key": listed[0]}


def test_a_new_client_has_no_keys(api, org):
    body = api.call("post", f"/organizations/{org.id}/clients", {"name": "x"}).json()
    assert body["client"]["keys"] == []


def test_delete_removes_the_key(api, guide_client):
    key = api.call("post", keys_path(guide_client), {"jwk": public_jwk(ec_key())}).json()["key"]
    response = api.call("delete", f"{keys_path(guide_client)}/{key['id']}")
    assert response.status_code == 200 and response.json() == {}
    assert not ClientKey.objects.exists()
    assert AuditEvent.objects.filter(action="client_key.delete", target_id=key["id"]).count() == 1
    assert_error(api.call("delete", f"{keys_path(guide_client)}/{key['id']}"), 404, 5)
    assert_error(api.call("get", f"{keys_path(guide_client)}/{key['id']}"), 404, 5)


def test_deleting_the_client_deletes_its_keys(api, guide_client):
    api.call("post", keys_path(guide_client), {"jwk": public_jwk(ec_key())})
    assert ClientKey.objects.count() == 1
    api.call("delete", keys_path(guide_client).removesuffix("/keys"))
    assert not ClientKey.objects.exists()


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_a_jwk_with_a_private_member_is_refused_and_not_stored(api, guide_client, member):
    jwk = {**public_jwk(rsa_key()), member: "AQAB"}
    before = state()
    body = assert_error(api.call("post", keys_path(guide_client), {"jwk": jwk}), 400, 3)
    assert "private" in violations(body)["jwk"]
    assert state() == before


@pytest.mark.parametrize("make", [lambda: rsa_key(), lambda: ec_key()])
def test_a_whole_private_key_is_refused(api, guide_client, caplog, make):
    jwk = private_jwk(make())
    before = state()
    body = assert_error(api.call("post", keys_path(guide_client), {"jwk": jwk}), 400, 3)
    assert "private" in violations(body)["jwk"]
    assert state() == before
    assert jwk["d"] not in caplog.text


def _bad_jwks() -> list[tuple[str, object, str]]:
    rsa_jwk = public_jwk(rsa_key())
    ec_jwk = public_jwk(ec_key())
    return [
        ("not an object", ["x"], "jwk"),
        ("string", "{}", "jwk"),
        ("symmetric", {"kty": "oct"}, "jwk.kty"),
        ("no kty", {"n": rsa_jwk["n"], "e": "AQAB"}, "jwk.kty"),
        ("OKP", {"kty": "OKP", "crv": "Ed25519", "x": "AA"}, "jwk.kty"),
        ("rsa 1024", public_jwk(rsa_key(9, bits=1024)), "jwk.n"),
        ("rsa 2047", public_jwk(rsa_key(9, bits=2047)), "jwk.n"),
        ("rsa e=3", public_jwk(rsa_key(9, exponent=3)), "jwk.e"),
        ("rsa e=65539", {**rsa_jwk, "e": "AQAD"}, "jwk.e"),
        ("rsa e=1", {**rsa_jwk, "e": "AQ"}, "jwk.e"),
        ("rsa no n", {"kty": "RSA", "e": "AQAB"}, "jwk.n"),
        ("rsa bad base64", {**rsa_jwk, "n": "***"}, "jwk.n"),
        ("rsa padded", {**rsa_jwk, "e": "AQAB="}, "jwk.e"),
        ("rsa n number", {**rsa_jwk, "n": 12345}, "jwk.n"),
        ("rsa even e", {**rsa_jwk, "e": "AQAA"}, "jwk.e"),
        ("rsa with ES256", {**rsa_jwk, "alg": "ES256"}, "jwk.alg"),
        ("rsa with HS256", {**rsa_jwk, "alg": "HS256"}, "jwk.alg"),
        ("rsa with none", {**rsa_jwk, "alg": "none"}, "jwk.alg"),
        ("rsa with list alg", {**rsa_jwk, "alg": ["RS256"]}, "jwk.alg"),
        ("encryption key", {**rsa_jwk, "use": "enc"}, "jwk.use"),
        ("key_ops encrypt", {**rsa_jwk, "key_ops": ["encrypt"]}, "jwk.key_ops"),
        ("P-521", public_jwk(ec_key(ec.SECP521R1())), "jwk.crv"),
        ("secp256k1", public_jwk(ec_key(ec.SECP256K1())), "jwk.crv"),
        ("ec with RS256", {**ec_jwk, "alg": "RS256"}, "jwk.alg"),
        ("ec with ES384", {**ec_jwk, "alg": "ES384"}, "jwk.alg"),
        ("ec short x", {**ec_jwk, "x": "AQAB"}, "jwk.x"),
        ("ec off curve", {**ec_jwk, "y": ec_jwk["x"]}, "jwk.x"),
        ("kid number", {**ec_jwk, "kid": 7}, "jwk.kid"),
        ("kid empty", {**ec_jwk, "kid": ""}, "jwk.kid"),
        ("kid with space", {**ec_jwk, "kid": "a b"}, "jwk.kid"),
        ("kid too long", {**ec_jwk, "kid": "k" * 129}, "jwk.kid"),
    ]


@pytest.mark.parametrize(("name", "jwk", "field"), _bad_jwks(), ids=[b[0] for b in _bad_jwks()])
def test_bad_jwks_are_400_and_change_nothing(api, guide_client, name, jwk, field):
    before = state()
    body = assert_error(api.call("post", keys_path(guide_client), {"jwk": jwk}), 400, 3)
    assert field in violations(body), violations(body)
    assert state() == before


@pytest.mark.parametrize(
    "body", [{}, {"jwk": None}, {"jwk": {}, "extra": 1}, [], {"key": {}}], ids=str
)
def test_bad_bodies_are_400_and_change_nothing(api, guide_client, body):
    before = state()
    assert_error(api.call("post", keys_path(guide_client), body), 400, 3)
    assert state() == before


def test_malformed_json_is_400(api, guide_client):
    before = state()
    assert_error(api.call("post", keys_path(guide_client), raw="{not json"), 400, 3)
    assert state() == before


def test_a_duplicate_kid_is_refused(api, guide_client):
    assert api.call("post", keys_path(guide_client), {"jwk": public_jwk(ec_key(), kid="k1")})
    before = state()
    body = assert_error(
        api.call("post", keys_path(guide_client), {"jwk": public_jwk(ec_key(), kid="k1")}), 400, 3
    )
    assert "jwk.kid" in violations(body)
    assert state() == before


def test_the_same_kid_on_another_client_is_fine(api, guide_client, other_client):
    jwk = public_jwk(ec_key(), kid="shared")
    assert api.call("post", keys_path(guide_client), {"jwk": jwk}).status_code == 201
    assert api.call("post", keys_path(other_client), {"jwk": jwk}).status_code == 201


def test_a_client_holds_at_most_ten_keys(api, guide_client):
    for i in range(10):
        jwk = public_jwk(ec_key(), kid=f"k{i}")
        assert api.call("post", keys_path(guide_client), {"jwk": jwk}).status_code == 201
    before = state()
    body = assert_error(
        api.call("post", keys_path(guide_client), {"jwk": public_jwk(ec_key())}),
        400,
        9,
        "FAILED_PRECONDITION",
    )
    assert "10" in body["message"]
    assert state() == before


def test_another_organizations_client_keys_are_404(api, guide_client, other_client):
    key = api.call("post", keys_path(other_client), {"jwk": public_jwk(ec_key())}).json()["key"]
    # guide_client's organization, other_client's id: a 404, not a peek.
    wrong = f"/organizations/{guide_client.client.organization_id}/clients/{other_client.client_id}"
    before = state()
    assert_error(api.call("get", f"{wrong}/keys"), 404, 5)
    assert_error(api.call("post", f"{wrong}/keys", {"jwk": public_jwk(ec_key())}), 404, 5)
    assert_error(api.call("delete", f"{wrong}/keys/{key['id']}"), 404, 5)
    # Another client's key id under the right client: 404 too.
    assert_error(api.call("delete", f"{keys_path(guide_client)}/{key['id']}"), 404, 5)
    assert_error(api.call("get", f"{keys_path(guide_client)}/{key['id']}"), 404, 5)
    assert state() == before


def test_keys_need_a_management_token(api, guide_client):
    before = state()
    response = api.call("post", keys_path(guide_client), {"jwk": public_jwk(ec_key())}, token="")
    assert_error(response, 401, 16)
    assert_error(api.call("get", keys_path(guide_client), token=""), 401, 16)
    assert state() == before


def test_a_client_token_cannot_manage_keys(api, client, guide_client):
    from tests.conftest import request_token

    token = request_token(client, guide_client).json()["access_token"]
    before = state()
    response = api.call("post", keys_path(guide_client), {"jwk": public_jwk(ec_key())}, token=token)
    assert response.status_code in (401, 403)
    assert state() == before
