"""The management API's JSON, byte for byte: every key, its place, and how each value is written.

The expected bodies were captured from the API as it answered when its response shapes were
still written by hand; a change to one of them is a change of the public API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from clients.models import ApiClient, ClientKey, ClientSecret, Organization
from clients.services import client_key_add, secret_add, secret_set_status
from tests.api.test_views import secrets_path
from tests.assertion_helpers import ec_key, public_jwk
from tests.conftest import GUIDE_CLIENT, SYSTEM

pytestmark = pytest.mark.django_db

# Whole seconds on purpose: the API writes the microseconds all the same.
CREATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
UPDATED = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
USED = datetime(2024, 6, 7, 8, 9, 10, 5, tzinfo=UTC)
PAST = datetime(2025, 1, 1, tzinfo=UTC)
LATER = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
NAME = "Société Générale ✓"  # written as UTF-8, not as \u escapes


def stamp(value: datetime | None) -> str | None:
    """How the API writes a time (RFC 3339): UTC, always six digits of microseconds, ``Z``."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def assert_body(response, status: int, expected: dict, separators=(",", ":")) -> None:
    """The body is ``expected``, written as DRF writes it (or with json's default separators,
    as Django's JsonResponse writes the errors answered outside DRF)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    text = json.dumps(expected, ensure_ascii=False, separators=separators)
    assert response.content.decode() == text


def pin(obj, **fields):
    """Set fields in the database behind the model's back (``auto_now`` included)."""
    type(obj).objects.filter(pk=obj.pk).update(**fields)
    obj.refresh_from_db()
    return obj


# --- The shapes, as the API wrote them --------------------------------------------------------


def organization_shape(org: Organization) -> dict:
    return {
        "id": org.id,
        "display_name": org.display_name,
        "external_id": org.external_id,
        "create_time": stamp(org.create_time),
        "update_time": stamp(org.update_time),
        "on_leak": org.on_leak,
        "secret_max_lifetime_days": org.secret_max_lifetime_days,
        "token_quota": None,
    }


def secret_shape(secret: ClientSecret, status: str) -> dict:
    return {
        "id": secret.id,
        "create_time": stamp(secret.create_time),
        "update_time": stamp(secret.update_time),
        "secret_suffix": secret.secret_suffix,
        "status": status,
        "last_used_time": stamp(secret.last_used_time),
        "expire_time": stamp(secret.expire_time),
        "unused": secret.is_unused,
        "leak": None,
    }


def key_shape(key: ClientKey, x: str, y: str, *, read_back: bool = True) -> dict:
    """A key as the API writes it; ``read_back``: as read from the database, whose member order
    the JWK then has (PostgreSQL's jsonb sorts them), rather than as just registered."""
    jwk = {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "ci-1", "use": "sig", "alg": "ES256"}
    stored = ClientKey.objects.get(pk=key.pk).jwk if read_back else jwk
    assert stored == jwk
    return {
        "id": key.id,
        "kid": "ci-1",
        "kty": "EC",
        "alg": "ES256",
        "create_time": stamp(key.create_time),
        "jwk": {name: jwk[name] for name in stored},
    }


def client_shape(client: ApiClient, secrets: list[dict], keys: list[dict], **changed) -> dict:
    fields = {**GUIDE_CLIENT, **changed}
    return {
        "client_id": client.id,
        "secrets": secrets,
        "keys": keys,
        "name": fields["name"],
        "description": fields["description"],
        "organization_id": client.organization_id,
        "create_time": stamp(client.create_time),
        "update_time": stamp(client.update_time),
        "scopes": fields["scopes"],
        "audience": fields["audience"],
        "custom_claims": fields["custom_claims"],
        "expiry": fields["expiry"],
        "dpop_bound_access_tokens": fields.get("dpop_bound_access_tokens", False),
        "token_quota": fields.get("token_quota"),
    }


# --- A world with every kind of value pinned --------------------------------------------------


class World:
    def __init__(self, org: Organization, client: ApiClient) -> None:
        self.org = pin(
            org, display_name=NAME, external_id=None, create_time=CREATED, update_time=UPDATED
        )
        [active] = client.secrets.all()
        expired, _ = secret_add(actor=SYSTEM, client=client, expire_time=LATER)
        inactive, _ = secret_add(actor=SYSTEM, client=client, expire_time=LATER)
        secret_set_status(actor=SYSTEM, secret=inactive, status="INACTIVE")
        self.secrets = [
            # Active, used, never expires.
            pin(active, create_time=CREATED, update_time=UPDATED, last_used_time=USED),
            # Active in the database, but past its expire_time: EXPIRED.
            pin(expired, create_time=UPDATED, update_time=UPDATED, expire_time=PAST),
            pin(inactive, create_time=USED, update_time=USED, secret_suffix="-_A9"),
        ]
        self.statuses = ["ACTIVE", "EXPIRED", "INACTIVE"]
        jwk = public_jwk(ec_key(), kid="ci-1", alg="ES256")
        self.x, self.y = jwk["x"], jwk["y"]
        key = client_key_add(actor=SYSTEM, client=client, jwk=jwk)
        self.key = pin(key, create_time=UPDATED)
        self.client = pin(client, create_time=CREATED, update_time=USED)
        self.path = f"/organizations/{org.id}/clients/{client.id}"

    def secret_shapes(self) -> list[dict]:
        pairs = zip(self.secrets, self.statuses, strict=True)
        return [secret_shape(secret, status) for secret, status in pairs]

    def key_shape(self) -> dict:
        return key_shape(self.key, self.x, self.y)

    def client_shape(self) -> dict:
        return client_shape(self.client, self.secret_shapes(), [self.key_shape()])


@pytest.fixture
def world(org, guide_client) -> World:
    return World(org, guide_client.client)


def test_times_are_written_in_utc_with_microseconds():
    assert stamp(CREATED) == "2024-01-02T03:04:05.000000Z"
    assert stamp(USED) == "2024-06-07T08:09:10.000005Z"
    assert stamp(CREATED.astimezone(timezone(timedelta(hours=2)))) == stamp(CREATED)


# --- Organizations ----------------------------------------------------------------------------


def test_get_organization(api, world):
    assert_body(
        api.call("get", f"/organizations/{world.org.id}"),
        200,
        {
            "organization": {
                "id": world.org.id,
                "display_name": NAME,
                "external_id": None,
                "create_time": "2024-01-02T03:04:05.000000Z",
                "update_time": "2024-05-06T07:08:09.123456Z",
                "on_leak": "revoke",
                "secret_max_lifetime_days": None,
                "token_quota": None,
            }
        },
    )


def test_list_organizations(api, world, other_org):
    response = api.call("get", "/organizations?page_size=1")
    token = response.json()["next_page_token"]
    assert token
    expected = {
        "organizations": [organization_shape(world.org)],
        "next_page_token": token,
        "prev_page_token": "",
        "total_size": Organization.objects.count(),
    }
    assert_body(response, 200, expected)
    second = api.call("get", f"/organizations?page_size=1&page_token={token}")
    body = second.json()
    assert body["prev_page_token"]
    assert_body(
        second,
        200,
        {
            "organizations": [organization_shape(other_org)],
            "next_page_token": body["next_page_token"],
            "prev_page_token": body["prev_page_token"],
            "total_size": Organization.objects.count(),
        },
    )


@pytest.mark.parametrize("external_id", ["ini-1", None])
def test_create_organization(api, external_id):
    body = {"display_name": NAME} | ({"external_id": external_id} if external_id else {})
    response = api.call("post", "/organizations", body)
    org = Organization.objects.get(pk=response.json()["organization"]["id"])
    assert org.external_id == external_id
    assert_body(response, 201, {"organization": organization_shape(org)})


def test_patch_organization(api, world):
    response = api.call("patch", f"/organizations/{world.org.id}", {"external_id": "x-1"})
    world.org.refresh_from_db()
    assert world.org.external_id == "x-1" and world.org.update_time > UPDATED
    assert_body(response, 200, {"organization": organization_shape(world.org)})


# --- Clients ----------------------------------------------------------------------------------


def test_get_client(api, world):
    assert_body(api.call("get", world.path), 200, {"client": world.client_shape()})


def test_list_clients(api, world):
    assert_body(
        api.call("get", f"/organizations/{world.org.id}/clients"),
        200,
        {
            "clients": [world.client_shape()],
            "next_page_token": "",
            "prev_page_token": "",
            "total_size": 1,
        },
    )


def test_create_client(api, org):
    response = api.call("post", f"/organizations/{org.id}/clients", GUIDE_CLIENT)
    plain = response.json()["plain_secret"]
    client = ApiClient.objects.get(pk=response.json()["client"]["client_id"])
    [secret] = client.secrets.all()
    shape = client_shape(client, [secret_shape(secret, "ACTIVE")], [])
    assert_body(response, 201, {"client": shape, "plain_secret": plain})
    assert response["Cache-Control"] == "no-store"


def test_create_a_client_with_defaults(api, org):
    response = api.call("post", f"/organizations/{org.id}/clients", {"name": "bare"})
    client = ApiClient.objects.get(pk=response.json()["client"]["client_id"])
    [secret] = client.secrets.all()
    shape = client_shape(
        client,
        [secret_shape(secret, "ACTIVE")],
        [],
        name="bare",
        description="",
        scopes=[],
        audience=[],
        custom_claims=[],
        expiry=3600,
    )
    assert_body(response, 201, {"client": shape, "plain_secret": response.json()["plain_secret"]})


def test_patch_client(api, world):
    claims = [{"key": "tier", "value": "gold"}]
    response = api.call("patch", world.path, {"description": "", "custom_claims": claims})
    world.client.refresh_from_db()
    shape = client_shape(
        world.client,
        world.secret_shapes(),
        [world.key_shape()],
        description="",
        custom_claims=claims,
    )
    assert_body(response, 200, {"client": shape})


def test_delete_client(api, world):
    assert_body(api.call("delete", world.path), 200, {})


# --- Secrets ----------------------------------------------------------------------------------


def test_list_secrets(api, world):
    assert_body(api.call("get", f"{world.path}/secrets"), 200, {"secrets": world.secret_shapes()})


def test_get_each_kind_of_secret(api, world):
    for secret, shape in zip(world.secrets, world.secret_shapes(), strict=True):
        assert_body(api.call("get", f"{world.path}/secrets/{secret.id}"), 200, {"secret": shape})


@pytest.mark.parametrize("body", [None, {"expiry_seconds": 3600}])
def test_add_secret(api, guide_client, body):
    response = api.call("post", secrets_path(guide_client), body)
    secret = ClientSecret.objects.get(pk=response.json()["secret"]["id"])
    assert (secret.expire_time is None) == (body is None)
    expected = {"secret": secret_shape(secret, "ACTIVE"), "plain_secret": secret_plain(response)}
    assert_body(response, 201, expected)
    assert response["Cache-Control"] == "no-store"


def secret_plain(response) -> str:
    plain = response.json()["plain_secret"]
    assert plain.endswith(response.json()["secret"]["secret_suffix"])
    return plain


def test_delete_secret(api, world):
    assert_body(api.call("delete", f"{world.path}/secrets/{world.secrets[2].id}"), 200, {})


# --- Keys -------------------------------------------------------------------------------------


def test_list_keys(api, world):
    assert_body(api.call("get", f"{world.path}/keys"), 200, {"keys": [world.key_shape()]})


def test_get_key(api, world):
    assert_body(
        api.call("get", f"{world.path}/keys/{world.key.id}"), 200, {"key": world.key_shape()}
    )


def test_add_key(api, guide_client):
    jwk = public_jwk(ec_key(), kid="ci-1", alg="ES256")
    path = f"/organizations/{guide_client.client.organization_id}/clients/{guide_client.client_id}"
    response = api.call("post", f"{path}/keys", {"jwk": jwk})
    key = ClientKey.objects.get(pk=response.json()["key"]["id"])
    assert_body(response, 201, {"key": key_shape(key, jwk["x"], jwk["y"], read_back=False)})


def test_delete_key(api, world):
    assert_body(api.call("delete", f"{world.path}/keys/{world.key.id}"), 200, {})


# --- Errors -----------------------------------------------------------------------------------


def error(code: int, message: str, name: str, violations: list | None = None) -> dict:
    detail = {"error_code": name} | ({"field_violations": violations} if violations else {})
    return {"code": code, "message": message, "details": [detail]}


def test_an_unknown_object_is_404(api, world):
    expected = error(5, "not found", "NOT_FOUND")
    assert_body(api.call("get", f"{world.path}/keys/ckey_0"), 404, expected)
    assert_body(api.call("get", "/no/such/route"), 404, expected, separators=(", ", ": "))


def test_invalid_fields_are_listed(api, org):
    body = {"name": "", "custom_claims": [{"key": "sub"}]}
    response = api.call("post", f"/organizations/{org.id}/clients", body)
    expected = error(
        3,
        "request has invalid fields",
        "INVALID_ARGUMENT",
        [
            {"field": "name", "description": "This field may not be blank."},
            {"field": "custom_claims[0].value", "description": "This field is required."},
        ],
    )
    assert_body(response, 400, expected)


def test_a_model_rule_is_listed_too(api, world):
    response = api.call("patch", world.path, {"custom_claims": [{"key": "sub", "value": "x"}]})
    expected = error(
        3,
        "request has invalid fields",
        "INVALID_ARGUMENT",
        [{"field": "custom_claims[0].key", "description": "'sub' is a registered claim name"}],
    )
    assert_body(response, 400, expected)


def test_a_limit_is_a_failed_precondition(api, world):
    for _ in range(2):
        assert api.call("post", f"{world.path}/secrets").status_code == 201
    response = api.call("post", f"{world.path}/secrets")
    assert_body(response, 400, error(9, response.json()["message"], "FAILED_PRECONDITION"))
    assert "5" in response.json()["message"]


def test_no_token_is_401(api):
    response = api.call("get", "/organizations", token=None)
    assert_body(
        response,
        401,
        error(16, "Authentication credentials were not provided.", "UNAUTHENTICATED"),
    )
