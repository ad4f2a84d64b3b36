"""/api/v1/openapi.json describes what the API answers: every operation is called for real, and
each answer is validated against the schema the document gives for its operation and status.

The document is read as a client reads it, over HTTP, and its schemas are turned into JSON Schema:
OpenAPI 3.0's ``nullable`` becomes "or null", and an object may hold only its documented
properties, so an undocumented key fails as surely as a missing or mistyped one. ``date-time``
means the one format the API writes. tests/e2e/test_openapi_fuzz.py fuzzes the same document
over HTTP; this suite is the quick, exact check.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from drf_spectacular.validation import validate_schema
from jsonschema import Draft202012Validator, FormatChecker

from tests.api.test_serializers import World
from tests.api.test_views import RFC3339
from tests.assertion_helpers import ec_key, public_jwk
from tests.conftest import GUIDE_CLIENT

pytestmark = pytest.mark.django_db

PREFIX = "/api/v1"

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time")
def _written_by_the_api(value: object) -> bool:
    return not isinstance(value, str) or bool(RFC3339.match(value))


def json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as a strict JSON Schema (2020-12)."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: json_schema(value) for key, value in node.items() if key != "nullable"}
    if "properties" in schema:
        schema.setdefault("additionalProperties", False)
    if node.get("nullable"):
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


class Document:
    def __init__(self, document: dict) -> None:
        self.document = document
        self.components = json_schema(document["components"])
        self.answered: set[tuple[str, str]] = set()

    def operations(self) -> set[tuple[str, str]]:
        return {
            (method, template)
            for template, operations in self.document["paths"].items()
            for method in operations
        }

    def operation(self, method: str, path: str) -> tuple[str, dict]:
        # Longest first: ``…/{endpoint_id}:test`` before ``…/{endpoint_id}``, which matches it too.
        paths = sorted(self.document["paths"].items(), key=lambda item: -len(item[0]))
        for template, operations in paths:
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
                assert method in operations, f"{method} {template} is not documented"
                return template, operations[method]
        raise AssertionError(f"{path} is not documented")

    def check(self, method: str, path: str, response: Any) -> None:
        template, operation = self.operation(method, PREFIX + path.partition("?")[0])
        where = f"{method.upper()} {template} {response.status_code}"
        documented = operation["responses"].get(str(response.status_code))
        assert documented, f"{where}: this status is not documented"
        content = documented.get("content")
        assert content, f"{where}: the body {response.content!r} is not documented"
        media_type = response["Content-Type"].partition(";")[0]
        assert media_type in content, f"{where}: {media_type} is not documented"
        schema = {**json_schema(content[media_type]["schema"]), "components": self.components}
        validator = Draft202012Validator(schema, format_checker=FORMATS)
        errors = [
            f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
            for error in validator.iter_errors(response.json())
        ]
        assert not errors, f"{where}: {errors}"
        if response.status_code < 300:
            self.answered.add((method, template))


@pytest.fixture
def document(client) -> Document:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    validate_schema(response.json())  # a valid OpenAPI document, to begin with
    return Document(response.json())


@pytest.fixture
def checked(api, document):
    """The management API client, each answer checked against the document."""

    class Checked:
        def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
            response = api.call(method, path, body, **kwargs)
            document.check(method, path, response)
            return response

    return Checked()


def test_every_operation_answers_as_documented(checked, document, org, guide_client, other_org):
    world = World(org, guide_client.client)
    call = checked.call
    assert call("get", "/organizations?page_size=1").json()["next_page_token"]
    created = call("post", "/organizations", {"display_name": "Initech"}).json()["organization"]
    assert created["external_id"] is None
    call("get", f"/organizations/{created['id']}")
    call("patch", f"/organizations/{created['id']}", {"external_id": "ini"})
    call("patch", f"/organizations/{created['id']}", {"on_leak": "notify"})
    call("patch", f"/organizations/{created['id']}", {"token_quota": {"per_hour": 100}})
    call("get", f"/organizations/{org.id}/usage?granularity=day")

    clients = f"/organizations/{org.id}/clients"
    call("get", clients)
    new = call("post", clients, GUIDE_CLIENT).json()["client"]
    call("get", world.path)
    call("patch", world.path, {"description": ""})
    call("patch", world.path, {"token_quota": {"per_day": 50, "mode": "observe"}})
    call("get", f"{world.path}/usage")

    call("get", f"{world.path}/secrets")
    call("post", f"{world.path}/secrets")
    call("post", f"{world.path}/secrets", {"expiry_seconds": 60})
    for secret in world.secrets:  # ACTIVE, EXPIRED, INACTIVE
        call("get", f"{world.path}/secrets/{secret.id}")

    call("get", f"{world.path}/keys")
    key = call("post", f"{world.path}/keys", {"jwk": public_jwk(ec_key())}).json()["key"]
    call("get", f"{world.path}/keys/{key['id']}")

    policies = f"{world.path}/trust-policies"
    call("get", policies)
    policy = call(
        "post",
        policies,
        {"name": "ci", "issuer": "https://gitlab.com", "subject": "project_path:acme/api:*"},
    ).json()["trust_policy"]
    call("get", f"{policies}/{policy['id']}")
    call("patch", f"{policies}/{policy['id']}", {"max_token_age": 600})
    call("delete", f"{policies}/{policy['id']}")

    for hooks in (f"/organizations/{org.id}/webhook-endpoints", "/webhook-endpoints"):
        made = call("post", hooks, {"url": "https://hooks.example.com/in"}).json()
        one = f"{hooks}/{made['webhook_endpoint']['id']}"
        call("get", hooks)
        call("get", one)
        call("patch", one, {"enabled": False, "event_types": ["client.deleted"]})
        call("post", f"{one}/secrets:rotate")
        call("post", f"{one}:test")
        call("get", f"{one}/deliveries")
        call("delete", one)
    call("delete", f"{world.path}/keys/{key['id']}")
    call("delete", f"{world.path}/secrets/{world.secrets[0].id}")
    plain = call("post", f"{world.path}/secrets").json()["plain_secret"]
    results = call("post", "/secrets:report-leak", {"secrets": [plain, "m2ms_x"]}).json()
    assert [r["label"] for r in results["results"]] == ["true_positive", "false_positive"]
    leaked = results["results"][0]["secret_id"]
    assert call("get", f"{world.path}/secrets/{leaked}").json()["secret"]["status"] == "LEAKED"

    call("delete", f"{clients}/{new['client_id']}")
    events = call("get", f"/organizations/{org.id}/audit-events?page_size=2").json()
    assert events["next_page_token"] and events["audit_events"][0]["action"] == "client.delete"
    assert document.answered == document.operations()


def test_errors_answer_as_documented(checked, guide_client):
    path = f"/organizations/{guide_client.client.organization_id}/clients/{guide_client.client_id}"
    call = checked.call
    assert call("get", f"{path}/keys/ckey_0").status_code == 404
    assert call("patch", path, {"name": "", "scopes": [1]}).status_code == 400
    assert call("post", f"{path}/keys", {"jwk": {"kty": "oct"}}).status_code == 400
    assert call("post", f"{path}/trust-policies", {"name": "x", "issuer": ""}).status_code == 400
    for _ in range(4):
        call("post", f"{path}/secrets")
    assert call("post", f"{path}/secrets").status_code == 400  # the sixth: FAILED_PRECONDITION
    assert call("post", f"{path}/secrets", raw="x", content_type="text/plain").status_code == 415
    assert call("post", "/organizations", raw="{").status_code == 400
    assert call("get", "/organizations?page_size=0").status_code == 400
    assert call("get", "/organizations", token=None).status_code == 401
    assert call("get", "/organizations", token="not-a-token").status_code == 401


def test_the_checks_catch_a_drift(document):
    """The conversion is strict: an extra key, a null or a time in another format fails."""
    org = {
        "id": "org_1",
        "display_name": "x",
        "external_id": None,
        "create_time": "2024-01-02T03:04:05.000000Z",
        "update_time": "2024-01-02T03:04:05.000000Z",
        "on_leak": "revoke",
        "secret_max_lifetime_days": None,
        "token_quota": None,
    }
    schema = {"$ref": "#/components/schemas/Organization", "components": document.components}
    validator = Draft202012Validator(schema, format_checker=FORMATS)
    assert validator.is_valid(org)
    assert not validator.is_valid({**org, "color": "red"})
    assert not validator.is_valid({**org, "display_name": None})
    assert not validator.is_valid({**org, "create_time": "2024-01-02T03:04:05Z"})
    assert not validator.is_valid({key: value for key, value in org.items() if key != "id"})


def test_every_operation_needs_the_bearer_scheme(document):
    schemes = document.document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    for template, operations in document.document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("security") == [{"bearerAuth": []}], (method, template)
