"""The management API, /api/v1: the guide's shapes, every error in one format, tenancy."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import jwt
import pytest
from django.db import connection
from django.utils import timezone

from clients.models import RESERVED_CLAIMS, ApiClient, AuditEvent, ClientSecret, Organization
from clients.services import client_create, client_delete, client_update
from oauth import keys
from tests.conftest import GUIDE_CLIENT, SYSTEM, Credentials, post_form, request_token
from tests.dpop_proofs import ProofKey

pytestmark = pytest.mark.django_db

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def api(client, management):
    """A Django test client that sends a management bearer token."""
    token = request_token(client, management).json()["access_token"]

    class Api:
        token_value = token

        def call(
            self, method, path, body=None, raw=None, token=token, content_type="application/json"
        ):
            headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
            data = raw if raw is not None else (json.dumps(body) if body is not None else "")
            return getattr(client, method)(
                f"/api/v1{path}", data, content_type=content_type, **headers
            )

    return Api()


def assert_error(response, status: int, code: int, error_code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], list) and body["details"]
    if error_code:
        assert body["details"][0]["error_code"] == error_code
    return body


def secrets_path(creds: Credentials) -> str:
    return f"/organizations/{creds.client.organization_id}/clients/{creds.client_id}/secrets"


def violations(body: dict) -> dict[str, str]:
    return {v["field"]: v["description"] for v in body["details"][0].get("field_violations", [])}


def snapshot() -> tuple:
    return (
        Organization.objects.count(),
        list(ApiClient.objects.order_by("id").values()),
        list(ClientSecret.objects.order_by("id").values()),
    )


# --- Organizations -----------------------------------------------------------------------------


def test_it_creates_and_reads_an_organization(api):
    response = api.call(
        "post", "/organizations", {"display_name": "Initech", "external_id": "ini-1"}
    )
    assert response.status_code == 201, response.content
    org = response.json()["organization"]
    assert re.fullmatch(r"org_\d{17}", org["id"])
    assert org["display_name"] == "Initech" and org["external_id"] == "ini-1"
    assert RFC3339.match(org["create_time"]) and RFC3339.match(org["update_time"])
    assert api.call("get", f"/organizations/{org['id']}").json() == {"organization": org}
    listed = api.call("get", "/organizations").json()
    assert org["id"] in [o["id"] for o in listed["organizations"]]
    assert listed["total_size"] >= 1


def test_organization_ids_are_random_not_a_sequence(api):
    ids = [
        api.call("post", "/organizations", {"display_name": f"o{i}"}).json()["organization"]["id"]
        for i in range(3)
    ]
    numbers = [int(i[4:]) for i in ids]
    assert sorted(numbers) != numbers or numbers[1] - numbers[0] != 1


def test_a_duplicate_external_id_is_400(api, org):
    before = snapshot()
    body = assert_error(
        api.call("post", "/organizations", {"display_name": "x", "external_id": "acme"}), 400, 3
    )
    assert "external_id" in violations(body)
    assert snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"display_name": ""},
        {"display_name": 5},
        {"display_name": "x" * 129},
        {"display_name": "x", "color": "red"},
        [],
    ],
)
def test_bad_organization_bodies_are_400(api, body):
    before = snapshot()
    assert_error(api.call("post", "/organizations", body), 400, 3, "INVALID_ARGUMENT")
    assert snapshot() == before


def test_an_unknown_organization_is_404(api):
    assert_error(api.call("get", "/organizations/org_00000000000000000"), 404, 5, "NOT_FOUND")
    assert_error(api.call("get", "/organizations/org_00000000000000000/clients"), 404, 5)


# --- Clients -----------------------------------------------------------------------------------


def test_it_registers_the_guides_client(api, org, client):
    response = api.call("post", f"/organizations/{org.id}/clients", GUIDE_CLIENT)
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"client", "plain_secret"}
    created = body["client"]
    assert re.fullmatch(r"m2morg_\d{17}", created["client_id"])
    assert created["organization_id"] == org.id
    for field in ("name", "description", "scopes", "audience", "custom_claims", "expiry"):
        assert created[field] == GUIDE_CLIENT[field]
    assert RFC3339.match(created["create_time"])
    [secret] = created["secrets"]
    assert re.fullmatch(r"sks_\d{17}", secret["id"])
    assert secret["status"] == "ACTIVE" and secret["last_used_time"] is None
    assert secret["secret_suffix"] == body["plain_secret"][-4:]
    assert body["plain_secret"].startswith("m2ms_") and len(body["plain_secret"]) == 5 + 49
    # The secret works at the token endpoint.
    creds = Credentials(ApiClient.objects.get(pk=created["client_id"]), body["plain_secret"])
    assert request_token(client, creds).status_code == 200
    # And is never shown again.
    again = api.call("get", f"/organizations/{org.id}/clients/{created['client_id']}").json()
    assert body["plain_secret"] not in json.dumps(again)
    assert "plain_secret" not in again


def test_expiry_defaults_to_3600(api, org):
    body = api.call("post", f"/organizations/{org.id}/clients", {"name": "minimal"}).json()
    assert body["client"]["expiry"] == 3600
    assert (
        body["client"]["scopes"] == []
        and body["client"]["audience"] == []
        and body["client"]["custom_claims"] == []
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"name": "ok", "description": "x" * 513}, "description"),
        ({"name": "ok", "scopes": "read"}, "scopes"),
        ({"name": "ok", "scopes": ["read", 7]}, "scopes[1]"),
        ({"name": "ok", "scopes": ["read", "has space"]}, "scopes[1]"),
        ({"name": "ok", "scopes": ["read", "read"]}, "scopes[1]"),
        ({"name": "ok", "audience": [""]}, "audience[0]"),
        (
            {"name": "ok", "custom_claims": [{"key": "iss", "value": "evil"}]},
            "custom_claims[0].key",
        ),
        (
            {"name": "ok", "custom_claims": [{"key": "scopes", "value": "x"}]},
            "custom_claims[0].key",
        ),
        ({"name": "ok", "custom_claims": [{"key": "a", "value": 1}]}, "custom_claims[0].value"),
        ({"name": "ok", "custom_claims": [{"key": "a"}]}, "custom_claims[0].value"),
        ({"name": "ok", "expiry": 59}, "expiry"),
        ({"name": "ok", "expiry": 86401}, "expiry"),
        ({"name": "ok", "expiry": "3600"}, "expiry"),
        ({"name": "ok", "expiry": True}, "expiry"),
        ({"name": "ok", "expiry": 3600.5}, "expiry"),
        ({"name": "ok", "client_id": "m2morg_1"}, "client_id"),
        ({"name": "ok", "dpop_bound_access_tokens": "true"}, "dpop_bound_access_tokens"),
        ({"name": "ok", "dpop_bound_access_tokens": 1}, "dpop_bound_access_tokens"),
        ({"name": "ok", "dpop_bound_access_tokens": None}, "dpop_bound_access_tokens"),
    ],
)
def test_bad_client_bodies_are_400_and_change_nothing(api, org, body, field):
    before = snapshot()
    response = api.call("post", f"/organizations/{org.id}/clients", body)
    found = violations(assert_error(response, 400, 3, "INVALID_ARGUMENT"))
    assert field in found, found
    assert snapshot() == before


def test_reserved_claim_keys_are_all_refused(api, org):
    for key in (
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "client_id",
        "oid",
        "scope",
        "scopes",
    ):
        body = {"name": "x", "custom_claims": [{"key": key, "value": "v"}]}
        assert api.call("post", f"/organizations/{org.id}/clients", body).status_code == 400, key


def test_malformed_json_is_400(api, org):
    before = snapshot()
    body = assert_error(
        api.call("post", f"/organizations/{org.id}/clients", raw="{not json"), 400, 3
    )
    assert "JSON" in body["message"]
    assert snapshot() == before


def test_a_non_json_content_type_is_415(api, org):
    assert_error(
        api.call(
            "post",
            f"/organizations/{org.id}/clients",
            raw="name=x",
            content_type="application/x-www-form-urlencoded",
        ),
        415,
        3,
    )


def test_an_oversized_body_is_413(api, org):
    before = snapshot()
    body = {"name": "big", "description": "x" * (1024 * 1024)}
    assert_error(api.call("post", f"/organizations/{org.id}/clients", body), 413, 8)
    assert snapshot() == before


def test_list_pages_with_opaque_tokens(api, org):
    ids = [client_create(actor=SYSTEM, organization=org, name=f"c{i}")[0].id for i in range(5)]
    first = api.call("get", f"/organizations/{org.id}/clients?page_size=2").json()
    assert [c["client_id"] for c in first["clients"]] == ids[:2]
    assert first["total_size"] == 5 and first["prev_page_token"] == ""
    second = api.call(
        "get", f"/organizations/{org.id}/clients?page_size=2&page_token={first['next_page_token']}"
    ).json()
    assert [c["client_id"] for c in second["clients"]] == ids[2:4]
    third = api.call(
        "get", f"/organizations/{org.id}/clients?page_size=2&page_token={second['next_page_token']}"
    ).json()
    assert [c["client_id"] for c in third["clients"]] == ids[4:]
    assert third["next_page_token"] == ""
    back = api.call(
        "get", f"/organizations/{org.id}/clients?page_size=2&page_token={second['prev_page_token']}"
    ).json()
    assert back["clients"] == first["clients"]
    default = api.call("get", f"/organizations/{org.id}/clients").json()
    assert len(default["clients"]) == 5


@pytest.mark.parametrize(
    "query", ["page_size=0", "page_size=101", "page_size=abc", "page_token=garbage"]
)
def test_bad_paging_is_400(api, org, query):
    assert_error(api.call("get", f"/organizations/{org.id}/clients?{query}"), 400, 3)


def test_a_page_token_of_another_organization_is_400(api, org, other_org):
    for i in range(3):
        client_create(actor=SYSTEM, organization=org, name=f"c{i}")
    token = api.call("get", f"/organizations/{org.id}/clients?page_size=1").json()[
        "next_page_token"
    ]
    assert_error(
        api.call("get", f"/organizations/{other_org.id}/clients?page_token={token}"), 400, 3
    )


def test_patch_changes_given_fields_and_keeps_others(api, guide_client):
    path = f"/organizations/{guide_client.client.organization_id}/clients/{guide_client.client_id}"
    response = api.call("patch", path, {"description": "new", "scopes": ["read:deployments"]})
    assert response.status_code == 200, response.content
    updated = response.json()["client"]
    assert updated["description"] == "new" and updated["scopes"] == ["read:deployments"]
    assert (
        updated["name"] == GUIDE_CLIENT["name"] and updated["audience"] == GUIDE_CLIENT["audience"]
    )


def test_a_bad_patch_changes_nothing(api, guide_client):
    path = f"/organizations/{guide_client.client.organization_id}/clients/{guide_client.client_id}"
    before = snapshot()
    assert_error(api.call("patch", path, {"description": "fine", "expiry": 10}), 400, 3)
    assert_error(api.call("patch", path, {"name": None}), 400, 3)
    assert snapshot() == before


def test_delete_client_stops_its_secrets_at_once(api, client, guide_client):
    assert request_token(client, guide_client).status_code == 200
    path = f"/organizations/{guide_client.client.organization_id}/clients/{guide_client.client_id}"
    response = api.call("delete", path)
    assert response.status_code == 200 and response.json() == {}
    assert request_token(client, guide_client).status_code == 401
    assert_error(api.call("get", path), 404, 5)
    assert_error(api.call("delete", path), 404, 5)


# --- Secrets -----------------------------------------------------------------------------------


def test_add_and_delete_secrets(api, client, guide_client):
    base = secrets_path(guide_client)
    response = api.call("post", base)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"secret", "plain_secret"}
    assert body["secret"]["secret_suffix"] == body["plain_secret"][-4:]
    new = Credentials(guide_client.client, body["plain_secret"])
    assert request_token(client, new).status_code == 200
    old_id = (
        ClientSecret.objects.exclude(pk=body["secret"]["id"]).get(client=guide_client.client).id
    )
    assert api.call("delete", f"{base}/{old_id}").json() == {}
    assert request_token(client, guide_client).status_code == 401
    assert request_token(client, new).status_code == 200
    assert_error(api.call("delete", f"{base}/{old_id}"), 404, 5)


def test_a_client_holds_at_most_five_secrets(api, guide_client):
    base = secrets_path(guide_client)
    for _ in range(4):
        assert api.call("post", base).status_code == 201
    before = snapshot()
    body = assert_error(api.call("post", base), 400, 9, "FAILED_PRECONDITION")
    assert "5" in body["message"]
    assert snapshot() == before


def test_secret_with_expiry(api, client, guide_client):
    base = secrets_path(guide_client)
    body = api.call("post", base, {"expiry_seconds": 3600}).json()
    assert body["secret"]["expire_time"] is not None
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert api.call("post", base, {"expire_time": future}).status_code == 201
    assert_error(api.call("post", base, {"expire_time": "2001-01-01T00:00:00Z"}), 400, 3)
    assert_error(api.call("post", base, {"expire_time": "tomorrow"}), 400, 3)
    assert_error(api.call("post", base, {"expiry_seconds": 5}), 400, 3)
    secret_id = body["secret"]["id"]
    ClientSecret.objects.filter(pk=secret_id).update(
        expire_time=timezone.now() - timedelta(seconds=1)
    )
    shown = api.call("get", f"{base}/{secret_id}").json()["secret"]
    assert shown["status"] == "EXPIRED"
    assert (
        request_token(client, Credentials(guide_client.client, body["plain_secret"])).status_code
        == 401
    )


# --- Tenancy -----------------------------------------------------------------------------------


def test_another_organizations_objects_are_404(api, org, other_client):
    path = f"/organizations/{org.id}/clients/{other_client.client_id}"
    secret_id = ClientSecret.objects.get(client=other_client.client).id
    before = snapshot()
    for method, sub in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/secrets"),
        ("get", "/secrets"),
        ("delete", f"/secrets/{secret_id}"),
    ]:
        body = {"name": "hijack"} if method == "patch" else None
        assert_error(api.call(method, path + sub, body), 404, 5)
    assert snapshot() == before


def test_a_secret_of_another_client_is_404(api, org, guide_client):
    mine, _ = client_create(actor=SYSTEM, organization=org, name="second")
    secret_id = ClientSecret.objects.get(client=guide_client.client).id
    assert_error(
        api.call("delete", f"/organizations/{org.id}/clients/{mine.id}/secrets/{secret_id}"), 404, 5
    )
    assert ClientSecret.objects.filter(pk=secret_id).exists()


# --- Authentication ----------------------------------------------------------------------------


def test_no_token_is_401(api, org):
    response = api.call("get", "/organizations", token=None)
    assert_error(response, 401, 16, "UNAUTHENTICATED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_is_401(api):
    response = api.call("get", "/organizations", token="not.a.jwt")
    assert_error(response, 401, 16)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_an_expired_token_is_401(api, management):
    key = keys.current_loaded_key()
    from oauth.token.lookup import AuthenticatedClient
    from oauth.token.signing import issue_token

    row = management.client
    expired = AuthenticatedClient(row.id, None, row.scopes, row.audience, [], 60, key.kid)
    token = issue_token(expired).access_token
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(iat=claims["iat"] - 7200, nbf=claims["nbf"] - 7200, exp=claims["exp"] - 7200)
    assert_error(api.call("get", "/organizations", token=key.encode(claims)), 401, 16)


def test_a_customer_token_is_refused(api, client, guide_client):
    token = request_token(client, guide_client).json()["access_token"]
    assert api.call("get", "/organizations", token=token).status_code == 401  # wrong audience


def test_a_token_without_the_management_scope_is_403(api, client, management):
    client_update(actor=SYSTEM, client=management.client, scopes=["other"])
    token = request_token(client, management).json()["access_token"]
    response = api.call("get", "/organizations", token=token)
    assert_error(response, 403, 7, "PERMISSION_DENIED")
    assert 'error="insufficient_scope"' in response.get("WWW-Authenticate", "")


def test_unknown_routes_and_methods(api, org):
    assert_error(api.call("get", "/nothing-here"), 404, 5)
    assert_error(api.call("put", f"/organizations/{org.id}", {"display_name": "x"}), 405, 12)


# --- Audit and secrecy -------------------------------------------------------------------------


def test_every_change_is_audited_with_the_management_client(api, org, management):
    created = api.call("post", f"/organizations/{org.id}/clients", {"name": "audited"}).json()[
        "client"
    ]
    path = f"/organizations/{org.id}/clients/{created['client_id']}"
    api.call("patch", path, {"description": "d"})
    secret = api.call("post", f"{path}/secrets").json()["secret"]
    api.call("delete", f"{path}/secrets/{secret['id']}")
    api.call("delete", path)
    events = AuditEvent.objects.filter(client_id=created["client_id"]).order_by("time", "id")
    actions = [e.action for e in events]
    assert actions == [
        "client.create",
        "secret.create",
        "client.update",
        "secret.create",
        "secret.delete",
        "client.delete",
    ]
    for event in events:
        assert event.actor_type == "client" and event.actor_id == management.client_id
        assert event.organization_id == org.id
        assert event.source_ip == "127.0.0.1"


def test_no_plain_secret_in_the_database_or_logs(api, org, client, caplog):
    caplog.set_level(logging.DEBUG)
    plains = []
    created = api.call("post", f"/organizations/{org.id}/clients", GUIDE_CLIENT).json()
    plains.append(created["plain_secret"])
    path = f"/organizations/{org.id}/clients/{created['client']['client_id']}"
    plains.append(api.call("post", f"{path}/secrets").json()["plain_secret"])
    creds = Credentials(ApiClient.objects.get(pk=created["client"]["client_id"]), plains[0])
    request_token(client, creds)
    request_token(client, Credentials(creds.client, plains[0] + "x"))
    dump = []
    with connection.cursor() as cursor:
        for model in (Organization, ApiClient, ClientSecret, AuditEvent):
            cursor.execute(f"SELECT * FROM {model._meta.db_table}")
            dump.append(repr(cursor.fetchall()))
    text = "\n".join(dump) + caplog.text
    for plain in plains:
        assert plain not in text
        assert plain[5:] not in text
    stored = ClientSecret.objects.filter(client_id=created["client"]["client_id"]).first()
    assert stored.secret_hash.startswith("$argon2id$")


def test_the_access_line_names_the_management_client_and_organization(api, org, management):
    from tests.serving.helpers import captured_json

    with captured_json() as logs:
        api.call("get", f"/organizations/{org.id}/clients")
    (line,) = [entry for entry in logs.parsed() if entry["logger"] == "portal.access"]
    assert line["client_id"] == management.client_id
    assert line["organization_id"] == org.id
    assert api.token_value not in "\n".join(logs.lines)


# --- Who may call: a live management client ----------------------------------------------------


def assert_token_refused(response) -> None:
    body = assert_error(response, 401, 16, "UNAUTHENTICATED")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert body["message"]


def test_a_revoked_management_token_is_refused_at_once(api, client, management):
    assert api.call("get", "/organizations").status_code == 200
    revoked = post_form(
        client,
        "/oauth/revoke",
        {"token": api.token_value},
        HTTP_AUTHORIZATION=management.basic(),
    )
    assert revoked.status_code == 200
    assert_token_refused(api.call("get", "/organizations"))
    fresh = request_token(client, management).json()["access_token"]
    assert api.call("get", "/organizations", token=fresh).status_code == 200


def test_a_token_of_a_deleted_management_client_is_refused_at_once(api, management):
    assert api.call("get", "/organizations").status_code == 200
    client_delete(actor=SYSTEM, client=management.client)
    assert_token_refused(api.call("get", "/organizations"))


def test_an_organization_clients_token_is_refused_even_with_the_management_grant(
    api, client, guide_client, settings
):
    # Written before the rule existed (the service refuses it now): the data an upgrade finds.
    ApiClient.objects.filter(pk=guide_client.client_id).update(
        scopes=["management"], audience=[settings.OAUTH["MANAGEMENT_AUDIENCE"]]
    )
    token = request_token(client, guide_client).json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["scope"] == "management"
    assert_token_refused(api.call("get", "/organizations", token=token))


def _expired(token: str, seconds_ago: int) -> str:
    """``token`` re-signed with our key, expired ``seconds_ago``."""
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(timezone.now().timestamp())
    claims.update(iat=now - 600, nbf=now - 600, exp=now - seconds_ago)
    return keys.current_loaded_key().encode(claims)


def test_the_management_api_allows_the_leeway_introspection_allows(api, settings):
    # 20 s past exp: the kit's own default (30 s) would let it through; ours is 5 s.
    late = _expired(api.token_value, seconds_ago=20)
    assert_token_refused(api.call("get", "/organizations", token=late))
    settings.OAUTH = {**settings.OAUTH, "TOKEN_LEEWAY_SECONDS": 120}
    assert api.call("get", "/organizations", token=late).status_code == 200


# --- The management grant and reserved claim names, through the API ---------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scopes": ["read", "management"]}, "scopes[1]"),
        ({"audience": ["http://127.0.0.1:8000/api/v1"]}, "audience[0]"),
    ],
)
def test_an_organization_client_cannot_get_the_management_grant(
    api, org, guide_client, fields, field
):
    before = snapshot()
    created = api.call("post", f"/organizations/{org.id}/clients", {"name": "x", **fields})
    body = assert_error(created, 400, 3, "INVALID_ARGUMENT")
    assert body["message"] == "request has invalid fields"
    assert "management API" in violations(body)[field]
    path = f"/organizations/{org.id}/clients/{guide_client.client_id}"
    body = assert_error(api.call("patch", path, fields), 400, 3, "INVALID_ARGUMENT")
    assert list(violations(body)) == [field]
    assert snapshot() == before


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_each_reserved_claim_name_is_refused(api, org, name):
    before = snapshot()
    data = {"name": "x", "custom_claims": [{"key": name.upper(), "value": "x"}]}
    response = api.call("post", f"/organizations/{org.id}/clients", data)
    body = assert_error(response, 400, 3, "INVALID_ARGUMENT")
    assert violations(body) == {
        "custom_claims[0].key": f"{name.upper()!r} is a registered claim name"
    }
    assert snapshot() == before


@pytest.mark.parametrize("bad", ["Initech\nBcc: x@evil.test", "Initech\u0000", "tab\tname"])
def test_a_control_character_in_a_name_is_a_field_error(api, org, bad):
    body = assert_error(api.call("post", "/organizations", {"display_name": bad}), 400, 3)
    assert body["details"][0]["field_violations"][0]["field"] == "display_name"
    client = {**GUIDE_CLIENT, "name": bad}
    body = assert_error(api.call("post", f"/organizations/{org.id}/clients", client), 400, 3)
    assert body["details"][0]["field_violations"][0]["field"] == "name"
    assert Organization.objects.count() == 1
    assert not ApiClient.objects.filter(organization=org).exists()


def test_a_client_can_require_dpop(api, org, client):
    """RFC 9449 §5.2 dpop_bound_access_tokens: set at creation, changed by PATCH, enforced."""
    body = {"name": "bound", "dpop_bound_access_tokens": True}
    created = api.call("post", f"/organizations/{org.id}/clients", body).json()
    assert created["client"]["dpop_bound_access_tokens"] is True
    creds = Credentials(
        ApiClient.objects.get(pk=created["client"]["client_id"]), created["plain_secret"]
    )
    response = request_token(client, creds)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"
    path = f"/organizations/{org.id}/clients/{creds.client_id}"
    patched = api.call("patch", path, {"dpop_bound_access_tokens": False}).json()
    assert patched["client"]["dpop_bound_access_tokens"] is False
    assert request_token(client, creds).status_code == 200
    plain = api.call("post", f"/organizations/{org.id}/clients", {"name": "plain"}).json()
    assert plain["client"]["dpop_bound_access_tokens"] is False


def test_the_management_api_takes_dpop_bound_tokens_with_their_proof(client, management, org):
    """The management API authenticates through the kit: a DPoP-bound management token works
    with its proof, is refused as Bearer, and a revoked one is refused with a proof too."""
    key = ProofKey.es256()
    token = post_form(
        client,
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": management.client_id,
            "client_secret": management.secret,
        },
        HTTP_DPOP=key.proof("POST", "http://testserver/oauth/token"),
    ).json()["access_token"]
    url = f"http://testserver/api/v1/organizations/{org.id}"

    def get(scheme: str, proof: str | None):
        extra = {"HTTP_DPOP": proof} if proof else {}
        return client.get(url, HTTP_AUTHORIZATION=f"{scheme} {token}", **extra)

    assert get("DPoP", key.proof("GET", url, access_token=token)).status_code == 200
    assert get("Bearer", None).status_code == 401
    refused = get("DPoP", key.proof("GET", url, access_token="another"))
    assert refused.status_code == 401
    assert 'error="invalid_dpop_proof"' in refused["WWW-Authenticate"]
    post_form(
        client,
        "/oauth/revoke",
        {"token": token, "client_id": management.client_id, "client_secret": management.secret},
    )
    assert get("DPoP", key.proof("GET", url, access_token=token)).status_code == 401
