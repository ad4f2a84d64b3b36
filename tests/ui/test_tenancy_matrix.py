"""The tenancy matrix: every portal URL and every API route, walked from the URL resolver.

A new route is covered the day it is added: its parameters are filled with the ids of another
organization's objects (or the test fails, naming the parameter it does not know), and every
method that the route serves must answer 404. Every state-changing portal URL, sent as a viewer
of the right organization with the right ids, must be refused with 403.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.urls import URLPattern, URLResolver, get_resolver

from clients.models import (
    AuditEvent,
    Invitation,
    Membership,
    WebhookDelivery,
    WebhookEvent,
)
from clients.services import (
    client_create,
    client_key_add,
    secret_add,
    trust_policy_create,
    webhook_endpoint_create,
)
from oauth.keys import public_jwk
from tests.conftest import SYSTEM, logged_in, make_user, request_token

pytestmark = pytest.mark.django_db

# Routes addressed by something other than an organization's object id, and why.
NOT_ORG_SCOPED = {
    "portal:invitation": "a signed single-use token, valid for whoever holds it",
    "portal:invitation-accept": "the same token",
    "portal:invitation-register": "the same token",
    "portal:password-reset-confirm": "Django's signed reset token",
}
# POSTs that change nothing, so a viewer may send them, and why.
READ_ONLY_POSTS = {
    "portal:trust-policy-test": "checks a pasted token against the policies; nothing is kept",
}
PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


@dataclass
class Route:
    name: str
    template: str
    params: list[str]

    def url(self, values: dict[str, str]) -> str:
        missing = [p for p in self.params if p not in values]
        assert not missing, f"{self.name}: the matrix does not know parameter(s) {missing}"
        return "/" + PARAM.sub(lambda m: str(values[m.group("name")]), self.template)


def walk(patterns, prefix: str = "", namespace: str = "") -> list[Route]:
    routes = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            routes += walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern) and entry.name:
            template = prefix + str(entry.pattern)
            params = [m.group("name") for m in PARAM.finditer(template)]
            routes.append(Route(f"{namespace}:{entry.name}", template, params))
    return routes


def routes(namespace: str) -> list[Route]:
    found = [r for r in walk(get_resolver().url_patterns) if r.name.startswith(f"{namespace}:")]
    assert found
    return found


def ec_jwk(kid: str) -> dict:
    return public_jwk(ec.generate_private_key(ec.SECP256R1()), kid, "ES256")


@pytest.fixture
def world(org, other_org, owner, viewer, guide_client):
    """Acme (ours) and Globex (theirs), each with a client, a secret, a member, an event."""
    theirs, _ = client_create(actor=SYSTEM, organization=other_org, name="Globex bot")
    their_secret, _ = secret_add(actor=SYSTEM, client=theirs)
    our_secret, _ = secret_add(actor=SYSTEM, client=guide_client.client)
    their_member = Membership.objects.create(
        user=make_user("them@globex.test"), organization=other_org, role=Membership.Role.ADMIN
    )
    our_member = Membership.objects.get(user=viewer, organization=org)
    our_key = client_key_add(actor=SYSTEM, client=guide_client.client, jwk=ec_jwk("ours"))
    our_invitation = Invitation.objects.create(
        organization=org, email="new@acme.test", role="viewer"
    )
    their_invitation = Invitation.objects.create(
        organization=other_org, email="new@globex.test", role="viewer"
    )
    their_key = client_key_add(actor=SYSTEM, client=theirs, jwk=ec_jwk("theirs"))
    policy = {"issuer": "https://gitlab.com", "subject": "project_path:acme/api:*"}
    our_policy = trust_policy_create(
        actor=SYSTEM, client=guide_client.client, name="ours", **policy
    )
    their_policy = trust_policy_create(actor=SYSTEM, client=theirs, name="theirs", **policy)
    endpoints, deliveries = {}, {}
    for side, organization in (("ours", org), ("theirs", other_org)):
        endpoint, _ = webhook_endpoint_create(
            actor=SYSTEM, organization=organization, url="https://hooks.example.com/"
        )
        event = WebhookEvent.objects.create(type="webhook.test", organization_id=organization.id)
        endpoints[side] = endpoint.id
        deliveries[side] = WebhookDelivery.objects.create(
            endpoint=endpoint, event=event, attempt=1, status="failed"
        ).id
    assert AuditEvent.objects.filter(organization_id=other_org.id).exists()
    return {
        "ours": {
            "org_id": org.id,
            "organization_id": org.id,
            "client_id": guide_client.client_id,
            "secret_id": our_secret.id,
            "membership_id": our_member.id,
            "key_id": our_key.id,
            "invitation_id": our_invitation.id,
            "policy_id": our_policy.id,
            "endpoint_id": endpoints["ours"],
            "delivery_id": deliveries["ours"],
        },
        "theirs": {
            "org_id": other_org.id,
            "organization_id": other_org.id,
            "client_id": theirs.id,
            "secret_id": their_secret.id,
            "membership_id": their_member.id,
            "key_id": their_key.id,
            "invitation_id": their_invitation.id,
            "policy_id": their_policy.id,
            "endpoint_id": endpoints["theirs"],
            "delivery_id": deliveries["theirs"],
        },
    }


def mixes(route: Route, world: dict) -> list[dict[str, str]]:
    """Their ids everywhere; and our organization with each of their object ids in turn."""
    ours, theirs = world["ours"], world["theirs"]
    out = []
    if {"org_id", "organization_id"} & set(route.params):
        out.append(dict(theirs))
    names = (
        "client_id",
        "secret_id",
        "membership_id",
        "key_id",
        "invitation_id",
        "policy_id",
        "endpoint_id",
        "delivery_id",
    )
    for name in names:
        if name in route.params:
            mixed = dict(ours)
            mixed[name] = theirs[name]
            out.append(mixed)
    return out


def served(response) -> bool:
    return response.status_code != 405


def test_every_portal_url_answers_404_with_another_organizations_ids(world, owner):
    browser = logged_in(owner)
    checked = 0
    for route in routes("portal"):
        if route.name in NOT_ORG_SCOPED or not route.params:
            continue
        for values in mixes(route, world):
            url = route.url(values)
            answers = {m: getattr(browser, m)(url) for m in ("get", "post")}
            answered = {m: r.status_code for m, r in answers.items() if served(r)}
            assert answered, (route.name, url)
            assert set(answered.values()) == {404}, (route.name, url, answered)
            checked += 1
    assert checked >= 15


def test_every_api_route_answers_404_with_another_organizations_ids(world, client, management):
    token = request_token(client, management).json()["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    checked = 0
    for route in routes("api"):
        if not route.params:
            continue
        mixed = [v for v in mixes(route, world) if v != world["theirs"]]
        for values in mixed:
            url = route.url(values)
            for method in ("get", "post", "patch", "delete"):
                if method == "get":
                    response = client.get(url, **auth)
                else:
                    response = getattr(client, method)(
                        url, "{}", content_type="application/json", **auth
                    )
                if not served(response):
                    continue
                assert response.status_code == 404, (route.name, method, url, response.content)
                assert response.json()["details"][0]["error_code"] == "NOT_FOUND"
                checked += 1
    assert checked >= 8


def test_every_state_changing_portal_url_refuses_a_viewer(world, viewer):
    browser = logged_in(viewer)
    refused = []
    for route in routes("portal"):
        if route.name in NOT_ORG_SCOPED or "org_id" not in route.params:
            continue
        if route.name in READ_ONLY_POSTS:
            continue
        response = browser.post(route.url(world["ours"]), {"name": "x", "email": "a@b.test"})
        if not served(response):
            continue  # a page that only shows (GET)
        assert response.status_code == 403, (route.name, response.status_code)
        refused.append(route.name)
    assert {
        "portal:client-new",
        "portal:client-update",
        "portal:client-delete",
        "portal:secret-new",
        "portal:secret-revoke",
        "portal:member-invite",
        "portal:member-role",
        "portal:member-remove",
        "portal:invitation-cancel",
        "portal:invitation-resend",
        "portal:trust-policy-new",
        "portal:trust-policy-delete",
    } <= set(refused), refused
