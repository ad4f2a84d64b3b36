"""The client page's Federation section: presets, adding and deleting trust policies, the "test a
token" box (against a local OIDC issuer), and the GitHub Actions workflow snippet."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest

from clients.models import AuditEvent, TrustPolicy
from clients.services import trust_policy_create
from oauth import federation
from tests.conftest import SYSTEM
from tests.oidc_issuer import Issuer, local_server

pytestmark = pytest.mark.django_db

GITHUB = "https://token.actions.githubusercontent.com"


def page(org, client_id: str, *parts: str) -> str:
    return "/".join(["", "orgs", org.id, "clients", client_id, *parts])


@pytest.fixture
def issuer(settings) -> Iterator[Issuer]:
    settings.OUTBOUND_ALLOW_INSECURE = True
    federation.forget_issuer_keys()
    with local_server() as server:
        yield Issuer(server)
    federation.forget_issuer_keys()


def policy_form(**change) -> dict:
    return {
        "name": "GitHub deploy",
        "issuer": GITHUB,
        "audience": "http://127.0.0.1:8000",
        "subject": "repo:acmecorp/*:environment:production",
        "claim_conditions": "repository_owner = acmecorp\njob_workflow_ref = acmecorp/ci/*",
        "max_token_age": "300",
        "jwks": "",
        **change,
    }


def test_the_client_page_has_the_federation_section_and_workflow(as_owner, org, guide_client):
    body = as_owner.get(page(org, guide_client.client_id)).content.decode()
    assert 'id="federation"' in body and "No trust policy" in body
    for preset in ("github", "gitlab", "kubernetes", "oidc"):
        assert f"trust-policies/new?preset={preset}" in body
    assert "id-token: write" in body
    assert f"-d client_id={guide_client.client_id}" in body
    assert "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer" in body


def test_the_github_preset_fills_the_form(as_owner, org, guide_client):
    response = as_owner.get(page(org, guide_client.client_id, "trust-policies/new?preset=github"))
    body = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert GITHUB in body and "repo:your-org/your-repo:environment:production" in body
    assert 'value="http://127.0.0.1:8000"' in body  # the audience: our issuer


def test_adding_a_policy_from_the_form(as_owner, owner, org, guide_client):
    response = as_owner.post(page(org, guide_client.client_id, "trust-policies/new"), policy_form())
    assert response.status_code == 302
    policy = TrustPolicy.objects.get()
    assert policy.claim_conditions == [
        {"claim": "repository_owner", "value": "acmecorp"},
        {"claim": "job_workflow_ref", "value": "acmecorp/ci/*"},
    ]
    event = AuditEvent.objects.get(action="trust_policy.create")
    assert event.actor_id == str(owner.pk)
    body = as_owner.get(page(org, guide_client.client_id)).content.decode()
    assert policy.id in body and "Test a token" in body


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"subject": "", "claim_conditions": ""}, "every workload of the issuer"),
        ({"issuer": "http://insecure.example"}, "https://"),
        ({"claim_conditions": "no equals sign"}, "write claim = value"),
        ({"jwks": "{not json"}, "not valid JSON"),
        ({"max_token_age": "0"}, "greater than or equal to 1"),
    ],
)
def test_a_bad_policy_is_shown_again_with_the_error(as_owner, org, guide_client, change, message):
    response = as_owner.post(
        page(org, guide_client.client_id, "trust-policies/new"), policy_form(**change)
    )
    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert not TrustPolicy.objects.exists()


def test_deleting_a_policy(as_owner, org, guide_client):
    policy = trust_policy_create(
        actor=SYSTEM, client=guide_client.client, name="x", issuer=GITHUB, subject="repo:a/b:*"
    )
    response = as_owner.post(
        page(org, guide_client.client_id, f"trust-policies/{policy.id}/delete")
    )
    assert response.status_code == 302
    assert not TrustPolicy.objects.exists()
    assert AuditEvent.objects.filter(action="trust_policy.delete").count() == 1


def test_a_viewer_sees_the_policies_but_cannot_change_them(as_viewer, org, guide_client):
    trust_policy_create(
        actor=SYSTEM, client=guide_client.client, name="x", issuer=GITHUB, subject="repo:a/b:*"
    )
    body = as_viewer.get(page(org, guide_client.client_id)).content.decode()
    assert "repo:a/b:*" in body and "trust-policies/new" not in body
    new = page(org, guide_client.client_id, "trust-policies/new")
    assert as_viewer.get(new).status_code == 403
    assert as_viewer.post(new, policy_form()).status_code == 403


def test_the_test_box_shows_each_check(as_viewer, org, guide_client, issuer):
    policy = trust_policy_create(
        actor=SYSTEM,
        client=guide_client.client,
        name="GitHub deploy",
        issuer=issuer.url,
        subject="repo:acmecorp/*:environment:production",
        claim_conditions=[{"claim": "repository_owner", "value": "acmecorp"}],
    )
    url = page(org, guide_client.client_id, "trust-policies/test")
    token = issuer.github_token("http://127.0.0.1:8000")
    response = as_viewer.post(url, {"token": token}, HTTP_HX_REQUEST="true")
    body = html.unescape(response.content.decode())
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert body.lstrip().startswith('<div id="test-result"')  # the fragment only
    assert "admitted" in body and "✗" not in body and body.count("✓") == 7
    assert token not in body
    wrong = issuer.github_token("http://127.0.0.1:8000", repository_owner="evilcorp")
    body = html.unescape(as_viewer.post(url, {"token": wrong}).content.decode())
    assert "<html" in body  # without htmx: a whole page
    assert "refused" in body
    assert (
        "repository_owner</code>: the external token's repository_owner claim does not match"
        in body
    )
    assert not AuditEvent.objects.filter(action="token.federated").exists()
    assert policy.name in body


def test_the_test_box_names_a_refusal_before_any_policy(as_owner, org, guide_client):
    url = page(org, guide_client.client_id, "trust-policies/test")
    body = html.unescape(as_owner.post(url, {"token": "not-a-jwt"}).content.decode())
    assert "Refused: the external token is not a well-formed JWT" in body
    assert as_owner.post(url, {"token": ""}).status_code == 400


def test_an_outsider_gets_404(as_outsider, org, guide_client):
    for suffix in ("trust-policies/new", "trust-policies/test"):
        assert as_outsider.post(page(org, guide_client.client_id, suffix), {}).status_code == 404
