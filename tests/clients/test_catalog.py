"""The API catalog: what the portal lets an organization grant, and its demo seed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from clients.models import ApiResource, ApiScope, AuditEvent
from clients.services import api_resource_create, catalog_check, organization_restrict_apis
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

DEPLOY = "deployment-api.acmecorp.com"


@pytest.fixture
def deployment(db) -> ApiResource:
    return api_resource_create(
        actor=SYSTEM,
        audience=DEPLOY,
        name="Deployment API",
        scopes=[("deploy:applications", ""), ("read:deployments", "")],
    )


def test_every_api_is_allowed_by_default(org, deployment):
    catalog_check(organization=org, audience=[DEPLOY], scopes=["read:deployments"])


def test_a_scope_needs_its_api_selected(org, deployment):
    with pytest.raises(ValidationError) as exc:
        catalog_check(organization=org, audience=[], scopes=["read:deployments"])
    assert "scopes" in exc.value.message_dict


def test_an_unknown_audience_or_scope_is_refused(org, deployment):
    with pytest.raises(ValidationError) as exc:
        catalog_check(organization=org, audience=[DEPLOY, "x.test"], scopes=["admin"])
    assert set(exc.value.message_dict) == {"audience", "scopes"}


def test_a_restriction_to_no_api_allows_nothing(org, deployment):
    organization_restrict_apis(actor=SYSTEM, organization=org, apis=[])
    with pytest.raises(ValidationError):
        catalog_check(organization=org, audience=[DEPLOY], scopes=[])
    organization_restrict_apis(actor=SYSTEM, organization=org, apis=None)
    catalog_check(organization=org, audience=[DEPLOY], scopes=[])
    assert AuditEvent.objects.filter(action="organization.restrict_apis").count() == 2


def test_an_audience_is_in_the_catalog_once(deployment):
    with pytest.raises(ValidationError):
        api_resource_create(actor=SYSTEM, audience=DEPLOY, name="Again")


def test_a_scope_with_a_space_is_refused(db):
    with pytest.raises(ValidationError):
        api_resource_create(actor=SYSTEM, audience="a.test", name="A", scopes=[("a b", "")])
    assert not ApiResource.objects.exists()


def test_bootstrap_demo_seeds_the_guides_api_once(db):
    call_command("bootstrap", "--demo")
    call_command("bootstrap", "--demo")
    api = ApiResource.objects.get(audience=DEPLOY)
    assert api.name == "Deployment API"
    assert sorted(ApiScope.objects.filter(api=api).values_list("name", flat=True)) == [
        "deploy:applications",
        "read:deployments",
    ]
    assert all(scope.description for scope in api.scopes.all())
