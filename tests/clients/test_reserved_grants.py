"""What a client may never be given, decided once in the domain (``clients.models``) and so
refused by every face: the management API's scope and audience on an organization's client or
in the catalog, and reserved claim names as custom claim keys."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from clients.models import (
    RESERVED_CLAIMS,
    ApiClient,
    ApiResource,
    ApiScope,
    validate_client_lists,
)
from clients.services import (
    api_resource_create,
    api_resource_update,
    api_scope_add,
    api_scope_update,
    client_create,
    client_update,
    management_client_create,
)
from tests.conftest import SYSTEM

MANAGEMENT_AUDIENCE = "http://127.0.0.1:8000/api/v1"  # {OAUTH_ISSUER}/api/v1 in the tests

pytestmark = pytest.mark.django_db


def refused(call, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        call(actor=SYSTEM, **kwargs)
    return caught.value.message_dict


# --- The management scope and audience ----------------------------------------------------------

GRANTS = [
    ({"scopes": ["read", "management"]}, "scopes[1]", "management API's scope"),
    ({"audience": ["a.example", MANAGEMENT_AUDIENCE]}, "audience[1]", "management API's audience"),
    ({"audience": [MANAGEMENT_AUDIENCE + "/"]}, "audience[0]", "management API's audience"),
]


@pytest.mark.parametrize(("fields", "field", "words"), GRANTS)
def test_an_organization_client_cannot_be_created_with_a_management_grant(
    org, fields, field, words
):
    errors = refused(client_create, organization=org, name="sneaky", **fields)
    assert list(errors) == [field] and words in errors[field][0]
    assert not ApiClient.objects.filter(organization=org).exists()


@pytest.mark.parametrize(("fields", "field", "words"), GRANTS)
def test_an_organization_client_cannot_be_edited_into_a_management_client(
    guide_client, fields, field, words
):
    errors = refused(client_update, client=guide_client.client, **fields)
    assert list(errors) == [field] and words in errors[field][0]
    stored = ApiClient.objects.get(pk=guide_client.client_id)
    assert stored.scopes == ["deploy:applications", "read:deployments"]
    assert stored.audience == ["deployment-api.acmecorp.com"]


def test_a_management_client_holds_the_management_grant(db):
    client, _ = management_client_create(actor=SYSTEM, name="ops")
    assert client.scopes == ["management"] and client.audience == [MANAGEMENT_AUDIENCE]
    client_update(actor=SYSTEM, client=client, description="still a management client")


def test_the_rule_follows_the_settings(org, settings):
    settings.OAUTH = {**settings.OAUTH, "MANAGEMENT_SCOPE": "admin", "MANAGEMENT_AUDIENCE": "mgmt"}
    assert set(refused(client_create, organization=org, name="x", scopes=["admin"])) == {
        "scopes[0]"
    }
    assert set(refused(client_create, organization=org, name="x", audience=["mgmt"])) == {
        "audience[0]"
    }
    client_create(actor=SYSTEM, organization=org, name="fine", scopes=["management"])


@pytest.mark.parametrize("audience", [MANAGEMENT_AUDIENCE, MANAGEMENT_AUDIENCE + "/"])
def test_the_management_audience_cannot_be_put_in_the_catalog(db, audience):
    errors = refused(api_resource_create, audience=audience, name="Management")
    assert list(errors) == ["audience"] and "management API's audience" in errors["audience"][0]
    api = api_resource_create(actor=SYSTEM, audience="billing.example", name="Billing")
    errors = refused(api_resource_update, api=api, audience=audience)
    assert list(errors) == ["audience"]
    assert ApiResource.objects.get().audience == "billing.example"


def test_the_management_scope_cannot_be_put_in_the_catalog(db):
    scopes = [("management", "")]
    errors = refused(api_resource_create, audience="a.example", name="A", scopes=scopes)
    assert list(errors) == ["name"] and "management API's scope" in errors["name"][0]
    assert not ApiResource.objects.exists()
    api = api_resource_create(actor=SYSTEM, audience="a.example", name="A", scopes=[("read", "")])
    assert list(refused(api_scope_add, api=api, name="management")) == ["name"]
    assert list(refused(api_scope_update, scope=api.scopes.get(), name="management")) == ["name"]
    assert list(ApiScope.objects.values_list("name", flat=True)) == ["read"]


# --- Reserved claim names -----------------------------------------------------------------------

NAMED_IN_THE_ISSUE = (
    *("roles", "groups", "entitlements", "act", "may_act", "cnf", "htm", "htu", "ath", "typ"),
    *("cty", "alg", "kid", "client_id", "scope", "scopes", "oid", "azp", "jti", "iss", "sub"),
    *("aud", "exp", "nbf", "iat", "auth_time", "acr", "amr", "sid", "authorization_details"),
)


def test_the_list_holds_every_name_the_issue_names_and_is_lower_case():
    assert set(NAMED_IN_THE_ISSUE) <= RESERVED_CLAIMS
    assert all(name == name.lower() for name in RESERVED_CLAIMS)


def claims_with(key: str) -> list[dict[str, str]]:
    return [{"key": "team", "value": "data"}, {"key": key, "value": "x"}]


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_each_reserved_claim_name_is_refused_in_any_case(name):
    for key in {name, name.upper(), name.title()}:
        if not key[0].isalpha() and key[0] != "_":
            continue
        errors = validate_client_lists([], [], claims_with(key))
        assert errors == {"custom_claims[1].key": [f"{key!r} is a registered claim name"]}


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
def test_the_service_refuses_each_reserved_claim_name(org, name):
    errors = refused(client_create, organization=org, name="x", custom_claims=claims_with(name))
    assert list(errors) == ["custom_claims[1].key"]
    assert not ApiClient.objects.exists()


def test_unreserved_claim_names_are_accepted(org):
    claims = [{"key": key, "value": "x"} for key in ("team", "github_repository", "role_hint")]
    client, _ = client_create(actor=SYSTEM, organization=org, name="x", custom_claims=claims)
    assert client.custom_claims == claims
