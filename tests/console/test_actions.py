"""Every staff action: its effect, and its audit event with the staff user as actor."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.utils import quote
from django.core.management import call_command
from django.urls import reverse

from clients.models import (
    ApiClient,
    ApiResource,
    AuditEvent,
    ClientSecret,
    Membership,
    Organization,
)
from oauth import keys
from tests.conftest import Credentials, post_form, request_token
from tests.console.conftest import assert_clean

pytestmark = pytest.mark.django_db


def last_event(action: str) -> AuditEvent:
    event = AuditEvent.objects.filter(action=action).order_by("-id").first()
    assert event is not None, f"no {action} event"
    return event


def assert_by(event: AuditEvent, user) -> None:
    assert event.actor_type == "user"
    assert event.actor_id == str(user.pk)
    assert event.actor_display == user.get_username()
    assert event.source_ip == "127.0.0.1"


def run_action(client, model: str, action: str, pks: list, **extra):
    return client.post(
        reverse(f"admin:{model}_changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in pks], **extra},
    )


def test_deactivate_and_reactivate_a_secret(admin_client, superuser, console, client):
    guide = console.credentials["guide"]
    secret = ClientSecret.objects.filter(client=guide.client).order_by("create_time").first()
    response = run_action(admin_client, "clients_clientsecret", "deactivate", [secret.pk])
    assert response.status_code == 302
    secret.refresh_from_db()
    assert secret.status == "INACTIVE"
    assert_by(last_event("secret.deactivate"), superuser)
    assert last_event("secret.deactivate").target_id == secret.pk
    assert request_token(client, guide).status_code == 401
    run_action(admin_client, "clients_clientsecret", "reactivate", [secret.pk])
    secret.refresh_from_db()
    assert secret.status == "ACTIVE"
    assert_by(last_event("secret.activate"), superuser)
    assert request_token(client, guide).status_code == 200


def test_revoke_secrets_in_bulk_and_one_by_one(admin_client, superuser, console, client):
    guide = console.credentials["guide"]
    first, *others = ClientSecret.objects.filter(client=guide.client).order_by("create_time")
    confirm = run_action(admin_client, "clients_clientsecret", "delete_selected", [first.pk])
    assert confirm.status_code == 200 and ClientSecret.objects.filter(pk=first.pk).exists()
    assert_clean(confirm.content, console)
    run_action(admin_client, "clients_clientsecret", "delete_selected", [first.pk], post="yes")
    assert not ClientSecret.objects.filter(pk=first.pk).exists()
    event = last_event("secret.delete")
    assert_by(event, superuser)
    assert event.target_id == first.pk
    assert request_token(client, guide).status_code == 401
    delete_url = reverse("admin:clients_clientsecret_delete", args=[quote(others[0].pk)])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not ClientSecret.objects.filter(pk=others[0].pk).exists()
    assert last_event("secret.delete").target_id == others[0].pk


def test_revoke_all_secrets_of_a_client(admin_client, superuser, console, client):
    guide = console.credentials["guide"]
    confirm = run_action(admin_client, "clients_apiclient", "revoke_all_secrets", [guide.client.id])
    assert confirm.status_code == 200
    assert "Revoke all secrets" in confirm.content.decode()
    assert ClientSecret.objects.filter(client=guide.client).count() == 3
    done = run_action(
        admin_client, "clients_apiclient", "revoke_all_secrets", [guide.client.id], post="yes"
    )
    assert done.status_code == 302
    assert not ClientSecret.objects.filter(client=guide.client).exists()
    events = AuditEvent.objects.filter(action="secret.delete", client_id=guide.client.id)
    assert events.count() == 3
    for event in events:
        assert_by(event, superuser)
    assert request_token(client, guide).status_code == 401


def test_delete_clients(admin_client, superuser, console, client):
    guide, other = console.credentials["guide"], console.credentials["other"]
    run_action(admin_client, "clients_apiclient", "delete_selected", [guide.client.id], post="yes")
    assert not ApiClient.objects.filter(pk=guide.client.id).exists()
    assert_by(last_event("client.delete"), superuser)
    assert request_token(client, guide).status_code == 401
    url = reverse("admin:clients_apiclient_delete", args=[quote(other.client.id)])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert_clean(page.content, console)
    admin_client.post(url, {"post": "yes"})
    assert not ApiClient.objects.filter(pk=other.client.id).exists()
    assert last_event("client.delete").target_id == other.client.id


def plain_from(response) -> str:
    match = re.search(r'<code id="client-secret">([^<]+)</code>', response.content.decode())
    assert match, "no secret on the page"
    return match.group(1)


def add_page_nonce(admin_client, url: str) -> str:
    page = admin_client.get(url)
    return re.search(r'name="nonce" value="([^"]+)"', page.content.decode()).group(1)


def test_create_a_management_client_shows_its_secret_once(admin_client, superuser, console, client):
    url = reverse("admin:clients_managementclient_add")
    nonce = add_page_nonce(admin_client, url)
    response = admin_client.post(
        url, {"name": "billing backend", "description": "", "nonce": nonce}
    )
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    plain = plain_from(response)
    assert response.content.decode().count(plain) == 1
    created = ApiClient.objects.get(name="billing backend")
    assert created.organization_id is None and created.id.startswith("skc_")
    event = last_event("management_client.create")
    assert_by(event, superuser)
    assert plain not in str(event.details)
    # The secret works, and is nowhere else: not in the session, a message, or the next page.
    token = request_token(client, Credentials(created, plain))
    assert token.status_code == 200
    session = admin_client.session
    assert all(plain not in str(value) for value in session.values())
    change = admin_client.get(
        reverse("admin:clients_managementclient_change", args=[quote(created.id)])
    )
    assert change.status_code == 200
    console.plain_secrets.append(plain)
    assert_clean(change.content, console)
    assert f"…{plain[-4:]}" in change.content.decode()
    # A re-sent form (reload) creates nothing and shows no secret.
    again = admin_client.post(url, {"name": "billing backend", "description": "", "nonce": nonce})
    assert again.status_code == 302
    assert ApiClient.objects.filter(name="billing backend").count() == 1
    followed = admin_client.get(again["Location"])
    assert_clean(followed.content, console)


def test_create_and_change_an_api_client(admin_client, superuser, console, org, client):
    url = reverse("admin:clients_apiclient_add")
    form = {
        "organization": org.id,
        "name": "Nightly export",
        "description": "",
        "expiry": "600",
        "scopes_text": "read:deployments",
        "audience_text": "deployment-api.acmecorp.com",
        "claims_text": "team=data\nregion=eu=west",
        "nonce": add_page_nonce(admin_client, url),
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    plain = plain_from(response)
    created = ApiClient.objects.get(name="Nightly export")
    assert created.organization_id == org.id
    assert created.custom_claims == [
        {"key": "team", "value": "data"},
        {"key": "region", "value": "eu=west"},
    ]
    assert_by(last_event("client.create"), superuser)
    assert_by(last_event("secret.create"), superuser)
    assert request_token(client, Credentials(created, plain)).status_code == 200
    console.plain_secrets.append(plain)

    change_url = reverse("admin:clients_apiclient_change", args=[quote(created.id)])
    response = admin_client.post(
        change_url,
        {
            **form,
            **secrets_inline(created),
            "name": "Nightly export v2",
            "scopes_text": "read:deployments deploy:applications",
        },
    )
    assert response.status_code == 302, (
        response.context["adminform"].form.errors,
        [f.errors for f in response.context["inline_admin_formsets"][0].formset.forms],
        response.context["inline_admin_formsets"][0].formset.non_form_errors(),
    )
    created.refresh_from_db()
    assert created.name == "Nightly export v2"
    assert created.scopes == ["read:deployments", "deploy:applications"]
    event = last_event("client.update")
    assert_by(event, superuser)
    assert event.details == {
        "client_name": "Nightly export v2",
        "changed": ["name", "scopes"],
        "changes": {
            "name": ["Nightly export", "Nightly export v2"],
            "scopes": [["read:deployments"], ["read:deployments", "deploy:applications"]],
        },
    }
    assert_clean(admin_client.get(change_url).content, console)

    # RFC 9449 §5.2: staff can require DPoP of a client; its proof-less requests are refused.
    assert created.dpop_bound_access_tokens is False
    response = admin_client.post(
        change_url,
        {
            **form,
            **secrets_inline(created),
            "name": "Nightly export v2",
            "scopes_text": "read:deployments deploy:applications",
            "dpop_bound_access_tokens": "on",
        },
    )
    assert response.status_code == 302
    created.refresh_from_db()
    assert created.dpop_bound_access_tokens is True
    assert last_event("client.update").details == {
        "client_name": "Nightly export v2",
        "changed": ["dpop_bound_access_tokens"],
        "changes": {"dpop_bound_access_tokens": [False, True]},
    }
    refused = request_token(client, Credentials(created, plain))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dpop_proof"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("claims_text", "no equals sign", "write key=value"),
        ("claims_text", "iss=me", "registered claim name"),
        ("scopes_text", "a a", "duplicate scope"),
        ("expiry", "5", "expiry must be between"),
    ],
)
def test_bad_client_input_is_refused_and_changes_nothing(
    admin_client, console, field, value, message
):
    guide = console.credentials["guide"].client
    url = reverse("admin:clients_apiclient_change", args=[quote(guide.id)])
    events = AuditEvent.objects.count()
    form = {
        "name": guide.name,
        "description": "",
        "expiry": "3600",
        **secrets_inline(guide),
        field: value,
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert message in response.content.decode()
    guide.refresh_from_db()
    assert guide.name == "GitHub Actions Deployment Service" and guide.expiry == 3600
    assert AuditEvent.objects.count() == events


def test_rotate_the_signing_key(admin_client, superuser, console):
    before = keys.current_signing_key()
    url = reverse("admin:oauth_signingkey_rotate")
    page = admin_client.get(url)
    assert page.status_code == 200 and before.kid in page.content.decode()
    assert keys.current_signing_key().kid == before.kid  # GET changes nothing
    response = admin_client.post(url, {"algorithm": "ES256"})
    assert response.status_code == 302
    after = keys.current_signing_key()
    assert after.kid != before.kid and after.algorithm == "ES256"
    before.refresh_from_db()
    assert before.retire_time is not None
    event = last_event("signing_key.rotate")
    assert_by(event, superuser)
    assert event.target_id == after.kid
    listing = admin_client.get(reverse("admin:oauth_signingkey_changelist"))
    assert "Rotate the signing key" in listing.content.decode()
    assert_clean(listing.content, console)


def test_the_rotate_command_uses_the_same_service(db):
    call_command("rotate_signing_key")
    event = last_event("signing_key.rotate")
    assert event.actor_type == "system" and event.actor_display == "rotate_signing_key"
    assert event.target_id == keys.current_signing_key().kid


def test_restrict_organizations_to_some_apis(admin_client, superuser, console, org, other_org):
    api = ApiResource.objects.get()
    confirm = run_action(admin_client, "clients_organization", "restrict_to_apis", [org.id])
    assert confirm.status_code == 200 and "Deployments" in confirm.content.decode()
    run_action(
        admin_client,
        "clients_organization",
        "restrict_to_apis",
        [org.id, other_org.id],
        post="yes",
        restrict="on",
        apis=[api.pk],
    )
    for organization in (org, other_org):
        organization.refresh_from_db()
        assert organization.restrict_apis
        assert list(organization.allowed_apis.all()) == [api]
    events = AuditEvent.objects.filter(action="organization.restrict_apis", actor_type="user")
    assert {e.target_id for e in events} == {org.id, other_org.id}
    assert_by(events.first(), superuser)
    # Unticked: the restriction is lifted.
    run_action(
        admin_client, "clients_organization", "restrict_to_apis", [org.id], post="yes", apis=[]
    )
    org.refresh_from_db()
    assert not org.restrict_apis and not org.allowed_apis.exists()
    assert last_event("organization.restrict_apis").details == {"apis": None}


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{name}": value for name, value in row.items()})
    return data


def secrets_inline(client: ApiClient) -> dict:
    """The read-only secrets inline's management form, as the browser sends it."""
    secrets = list(ClientSecret.objects.filter(client=client))
    return inline(
        "secrets", [{"id": s.pk, "client": client.id} for s in secrets], initial=len(secrets)
    )


def test_organization_add_change_and_delete_through_services(
    admin_client, superuser, console, staff_nobody
):
    api = ApiResource.objects.get()
    response = admin_client.post(
        reverse("admin:clients_organization_add"),
        {
            "display_name": "Initech",
            "external_id": "initech",
            "restrict_apis": "on",
            "allowed_apis": [api.pk],
            "on_leak": "revoke",
            **inline("memberships", [{"user": staff_nobody.pk, "role": "owner"}]),
        },
    )
    assert response.status_code == 302, response.content
    initech = Organization.objects.get(external_id="initech")
    assert initech.restrict_apis and list(initech.allowed_apis.all()) == [api]
    assert Membership.objects.get(organization=initech).user == staff_nobody
    for action in ("organization.create", "organization.restrict_apis", "member.add"):
        event = last_event(action)
        assert_by(event, superuser)
        assert event.organization_id == initech.id

    membership = Membership.objects.get(organization=initech)
    change = reverse("admin:clients_organization_change", args=[quote(initech.id)])
    # Removing the last owner is refused by the service: nothing changes.
    refused = admin_client.post(
        change,
        {
            "display_name": "Initech Ltd",
            "external_id": "initech",
            "restrict_apis": "on",
            "allowed_apis": [api.pk],
            "on_leak": "revoke",
            **inline(
                "memberships",
                [
                    {
                        "id": membership.pk,
                        "organization": initech.id,
                        "user": staff_nobody.pk,
                        "role": "owner",
                        "DELETE": "on",
                    }
                ],
                initial=1,
            ),
        },
    )
    assert refused.status_code == 302
    assert Membership.objects.filter(pk=membership.pk).exists()
    initech.refresh_from_db()
    assert initech.display_name == "Initech"  # the whole change rolled back
    messages = [str(m) for m in admin_client.get(refused["Location"]).context["messages"]]
    assert any("needs an owner" in m for m in messages)

    ok = admin_client.post(
        change,
        {
            "display_name": "Initech Ltd",
            "external_id": "initech",
            "on_leak": "notify",
            "secret_max_lifetime_days": "45",
            **inline(
                "memberships",
                [
                    {
                        "id": membership.pk,
                        "organization": initech.id,
                        "user": staff_nobody.pk,
                        "role": "owner",
                    }
                ],
                initial=1,
            ),
        },
    )
    assert ok.status_code == 302
    initech.refresh_from_db()
    assert initech.display_name == "Initech Ltd" and not initech.restrict_apis
    assert (initech.on_leak, initech.secret_max_lifetime_days) == ("notify", 45)
    assert_by(last_event("organization.update"), superuser)
    assert last_event("organization.restrict_apis").details == {"apis": None}

    delete = reverse("admin:clients_organization_delete", args=[quote(initech.id)])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Organization.objects.filter(pk=initech.id).exists()
    assert_by(last_event("organization.delete"), superuser)


def test_memberships_through_services(admin_client, superuser, console, org, staff_nobody):
    add = admin_client.post(
        reverse("admin:clients_membership_add"),
        {"user": staff_nobody.pk, "organization": org.id, "role": "viewer"},
    )
    assert add.status_code == 302, add.content
    membership = Membership.objects.get(user=staff_nobody, organization=org)
    assert_by(last_event("member.add"), superuser)
    change = reverse("admin:clients_membership_change", args=[membership.pk])
    assert admin_client.post(change, {"role": "admin"}).status_code == 302
    membership.refresh_from_db()
    assert membership.role == "admin"
    assert last_event("member.role_change").details["to"] == "admin"
    run_action(admin_client, "clients_membership", "delete_selected", [membership.pk], post="yes")
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert_by(last_event("member.remove"), superuser)


def test_the_api_catalog_through_services(admin_client, superuser, console):
    response = admin_client.post(
        reverse("admin:clients_apiresource_add"),
        {
            "name": "Billing",
            "audience": "billing-api.acmecorp.com",
            "description": "",
            **inline("scopes", [{"name": "read:invoices", "description": "Read invoices"}]),
        },
    )
    assert response.status_code == 302, response.content
    api = ApiResource.objects.get(name="Billing")
    assert [s.name for s in api.scopes.all()] == ["read:invoices"]
    assert_by(last_event("api.create"), superuser)
    assert last_event("api.scope_add").details["scope"] == "read:invoices"
    scope = api.scopes.get()
    change = reverse("admin:clients_apiresource_change", args=[api.pk])
    response = admin_client.post(
        change,
        {
            "name": "Billing API",
            "audience": "billing-api.acmecorp.com",
            "description": "",
            **inline(
                "scopes",
                [
                    {"id": scope.pk, "api": api.pk, "name": "read:invoices", "DELETE": "on"},
                    {"name": "write:invoices", "description": ""},
                ],
                initial=1,
            ),
        },
    )
    assert response.status_code == 302, response.content
    api.refresh_from_db()
    assert api.name == "Billing API"
    assert [s.name for s in api.scopes.all()] == ["write:invoices"]
    for action in ("api.update", "api.scope_delete", "api.scope_add"):
        assert_by(last_event(action), superuser)
    bad = admin_client.post(
        change,
        {
            "name": "Billing API",
            "audience": "billing-api.acmecorp.com",
            "description": "",
            **inline("scopes", [{"name": "has space", "description": ""}]),
        },
    )
    assert bad.status_code == 200 and "scope token" in bad.content.decode()
    admin_client.post(reverse("admin:clients_apiresource_delete", args=[api.pk]), {"post": "yes"})
    assert not ApiResource.objects.filter(pk=api.pk).exists()
    assert_by(last_event("api.delete"), superuser)


def test_a_staff_user_without_permissions_cannot_run_actions(client, staff_nobody, console):
    client.force_login(staff_nobody)
    secret = ClientSecret.objects.first()
    guide = console.credentials["guide"].client
    for model, action, pk in (
        ("clients_clientsecret", "deactivate", secret.pk),
        ("clients_clientsecret", "delete_selected", secret.pk),
        ("clients_apiclient", "revoke_all_secrets", guide.id),
        ("clients_apiclient", "delete_selected", guide.id),
        ("clients_organization", "restrict_to_apis", guide.organization_id),
    ):
        response = run_action(client, model, action, [pk], post="yes")
        assert response.status_code == 403, (model, action)
    secret.refresh_from_db()
    assert secret.status == "ACTIVE"
    assert ClientSecret.objects.filter(client=guide).count() == 3
    assert not AuditEvent.objects.filter(actor_type="user", actor_id=str(staff_nobody.pk)).exists()


def test_a_staff_user_with_view_permission_only_sees_but_cannot_act(client, staff_nobody, console):
    from django.contrib.auth.models import Permission

    staff_nobody.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_clientsecret", "view_apiclient"])
    )
    client.force_login(staff_nobody)
    assert client.get(reverse("admin:clients_clientsecret_changelist")).status_code == 200
    index = client.get(reverse("admin:index"))
    assert 'id="dashboard"' in index.content.decode()
    secret = ClientSecret.objects.first()
    response = run_action(client, "clients_clientsecret", "deactivate", [secret.pk])
    secret.refresh_from_db()
    assert secret.status == "ACTIVE"
    assert response.status_code in (200, 302)


def test_remove_a_client_public_key(admin_client, superuser, console):
    from cryptography.hazmat.primitives.asymmetric import ec

    from clients.models import ClientKey
    from clients.services import Actor, client_key_add
    from oauth.keys import public_jwk

    guide = console.credentials["guide"]
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()), "k1", "ES256")
    key = client_key_add(actor=Actor.system("tests"), client=guide.client, jwk=jwk)
    page = admin_client.get(reverse("admin:clients_clientkey_changelist"))
    assert page.status_code == 200 and key.kid.encode() in page.content
    response = run_action(admin_client, "clients_clientkey", "remove_keys", [key.pk])
    assert response.status_code == 302
    assert not ClientKey.objects.filter(pk=key.pk).exists()
    assert_by(last_event("client_key.delete"), superuser)


def test_staff_with_the_key_permissions_may_remove_a_client_key(client, staff_nobody, console):
    """The permissions are the model's own (clients.*_clientkey since it moved from oauth)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from django.contrib.auth.models import Permission

    from clients.models import ClientKey
    from clients.services import Actor, client_key_add
    from oauth.keys import public_jwk

    guide = console.credentials["guide"]
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()), "k2", "ES256")
    key = client_key_add(actor=Actor.system("tests"), client=guide.client, jwk=jwk)
    client.force_login(staff_nobody)
    assert run_action(client, "clients_clientkey", "remove_keys", [key.pk]).status_code == 403
    staff_nobody.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="clients", codename__in=["view_clientkey", "delete_clientkey"]
        )
    )
    response = run_action(client, "clients_clientkey", "remove_keys", [key.pk])
    assert response.status_code == 302
    assert not ClientKey.objects.filter(pk=key.pk).exists()


def test_remove_a_trust_policy(client, superuser, console, staff_nobody):
    from clients.models import TrustPolicy
    from clients.services import Actor, trust_policy_create

    guide = console.credentials["guide"]
    policy = trust_policy_create(
        actor=Actor.system("tests"),
        client=guide.client,
        name="GitHub deploy",
        issuer="https://token.actions.githubusercontent.com",
        subject="repo:acmecorp/*:environment:production",
    )
    client.force_login(staff_nobody)  # staff without the permission: refused, nothing removed
    response = run_action(client, "clients_trustpolicy", "remove_policies", [policy.pk])
    assert response.status_code == 403
    assert TrustPolicy.objects.filter(pk=policy.pk).exists()
    client.force_login(superuser)
    page = client.get(reverse("admin:clients_trustpolicy_changelist"))
    assert page.status_code == 200 and policy.id.encode() in page.content
    detail = client.get(reverse("admin:clients_trustpolicy_change", args=[policy.pk]))
    assert b"repo:acmecorp/*:environment:production" in detail.content
    response = run_action(client, "clients_trustpolicy", "remove_policies", [policy.pk])
    assert response.status_code == 302
    assert not TrustPolicy.objects.filter(pk=policy.pk).exists()
    assert_by(last_event("trust_policy.delete"), superuser)


def test_revoked_tokens_are_listed_read_only(admin_client, console, client):
    from oauth.models import RevokedToken

    guide = console.credentials["guide"]
    token = request_token(client, guide).json()["access_token"]
    response = post_form(
        client, "/oauth/revoke", {"token": token}, HTTP_AUTHORIZATION=guide.basic()
    )
    assert response.status_code == 200
    revoked = RevokedToken.objects.get()
    page = admin_client.get(reverse("admin:oauth_revokedtoken_changelist"))
    assert page.status_code == 200 and revoked.jti.encode() in page.content
    assert token.encode() not in page.content
    change = admin_client.post(
        reverse("admin:oauth_revokedtoken_delete", args=[quote(revoked.jti)])
    )
    assert change.status_code == 403
    assert RevokedToken.objects.filter(pk=revoked.pk).exists()


def test_withdraw_a_leaked_signing_key(admin_client, superuser, console, client):
    guide = console.credentials["guide"]
    leaked = keys.current_signing_key()
    old_token = request_token(client, guide).json()["access_token"]
    page = run_action(admin_client, "oauth_signingkey", "withdraw_keys", [leaked.pk])
    assert page.status_code == 200 and b"Withdraw" in page.content  # the confirmation page
    assert keys.current_signing_key().kid == leaked.kid  # nothing changed yet
    response = run_action(
        admin_client, "oauth_signingkey", "withdraw_keys", [leaked.pk], post="yes"
    )
    assert response.status_code == 302
    published = [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]
    assert leaked.kid not in published
    assert keys.current_signing_key().kid != leaked.kid
    new_token = request_token(client, guide).json()["access_token"]
    import jwt

    assert jwt.get_unverified_header(new_token)["kid"] in published
    assert jwt.get_unverified_header(old_token)["kid"] not in published
    event = last_event("signing_key.withdraw")
    assert_by(event, superuser)
    assert event.target_id == leaked.kid


# --- The management grant: never on an organization's client, never in the catalog -------------

MANAGEMENT_AUDIENCE = "http://127.0.0.1:8000/api/v1"


@pytest.mark.parametrize(
    ("field", "value"),
    [("scopes_text", "read:deployments management"), ("audience_text", MANAGEMENT_AUDIENCE)],
)
def test_an_api_client_cannot_be_created_with_the_management_grant(
    admin_client, console, org, field, value
):
    url = reverse("admin:clients_apiclient_add")
    events = AuditEvent.objects.count()
    form = {
        "organization": org.id,
        "name": "Sneaky",
        "description": "",
        "expiry": "600",
        "scopes_text": "",
        "audience_text": "",
        "claims_text": "",
        "nonce": add_page_nonce(admin_client, url),
        field: value,
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and "management API" in errors[field][0]
    assert not ApiClient.objects.filter(name="Sneaky").exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("field", "value"),
    [("scopes_text", "read:deployments management"), ("audience_text", MANAGEMENT_AUDIENCE)],
)
def test_an_api_client_cannot_be_edited_into_a_management_client(
    admin_client, console, field, value
):
    guide = console.credentials["guide"].client
    url = reverse("admin:clients_apiclient_change", args=[quote(guide.id)])
    events = AuditEvent.objects.count()
    form = {
        "name": guide.name,
        "description": "",
        "expiry": "3600",
        "scopes_text": " ".join(guide.scopes),
        "audience_text": "\n".join(guide.audience),
        **secrets_inline(guide),
        field: value,
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and "management API" in errors[field][0]
    stored = ApiClient.objects.get(pk=guide.id)
    assert stored.scopes == guide.scopes and stored.audience == guide.audience
    assert AuditEvent.objects.count() == events


def test_the_catalog_refuses_the_management_audience_and_scope(admin_client, console):
    add = reverse("admin:clients_apiresource_add")
    apis = list(ApiResource.objects.values_list("audience", flat=True))
    response = admin_client.post(
        add,
        {
            "name": "Management",
            "audience": MANAGEMENT_AUDIENCE,
            "description": "",
            **inline("scopes", []),
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["audience"] and "management API" in errors["audience"][0]
    response = admin_client.post(
        add,
        {
            "name": "Other",
            "audience": "other.example",
            "description": "",
            **inline("scopes", [{"name": "management", "description": ""}]),
        },
    )
    assert response.status_code == 200
    scope_forms = response.context["inline_admin_formsets"][0].formset.forms
    assert "management API" in scope_forms[0].errors["name"][0]
    assert list(ApiResource.objects.values_list("audience", flat=True)) == apis
    api = ApiResource.objects.get(audience="deployment-api.acmecorp.com")
    change = reverse("admin:clients_apiresource_change", args=[api.pk])
    scopes = list(api.scopes.all())
    response = admin_client.post(
        change,
        {
            "name": api.name,
            "audience": MANAGEMENT_AUDIENCE,
            "description": "",
            **inline(
                "scopes",
                [{"id": s.pk, "api": api.pk, "name": s.name, "description": ""} for s in scopes]
                + [{"name": "management", "description": ""}],
                initial=len(scopes),
            ),
        },
    )
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["audience"]
    scope_forms = response.context["inline_admin_formsets"][0].formset.forms
    assert "management API" in scope_forms[-1].errors["name"][0]
    api.refresh_from_db()
    assert api.audience == "deployment-api.acmecorp.com"
    assert sorted(api.scopes.values_list("name", flat=True)) == sorted(s.name for s in scopes)


@pytest.mark.parametrize("bad", ["Initech\nBcc: x@evil.test", "Initech\x00", "tab\tname"])
def test_a_control_character_in_a_name_is_a_field_error(admin_client, console, bad):
    response = admin_client.post(
        reverse("admin:clients_organization_add"),
        {"display_name": bad, "external_id": "initech", **inline("memberships", [])},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["display_name"]
    assert any("control characters" in e or "Null characters" in e for e in errors), errors
    assert not Organization.objects.filter(external_id="initech").exists()
    response = admin_client.post(
        reverse("admin:clients_apiresource_add"),
        {
            "name": "Billing",
            "audience": "billing-api.acmecorp.com",
            "description": bad,
            **inline("scopes", []),
        },
    )
    assert response.status_code == 200
    assert "description" in response.context["adminform"].form.errors
    assert not ApiResource.objects.filter(name="Billing").exists()


def test_a_leaked_secret_is_not_reactivated_from_the_console(admin_client, console, client):
    from clients.services import secret_report_leak
    from tests.conftest import SYSTEM

    guide = console.credentials["guide"]
    secret = ClientSecret.objects.filter(client=guide.client).order_by("create_time").first()
    secret_report_leak(actor=SYSTEM, token=guide.secret, url="https://x.test/leak")
    secret.refresh_from_db()
    assert secret.status == "LEAKED"
    for action in ("reactivate", "deactivate"):
        response = run_action(admin_client, "clients_clientsecret", action, [secret.pk])
        assert response.status_code == 302
        secret.refresh_from_db()
        assert secret.status == "LEAKED"
    page = admin_client.get(reverse("admin:clients_clientsecret_change", args=[quote(secret.pk)]))
    assert b"https://x.test/leak" in page.content
    assert request_token(client, guide).status_code == 401


def test_the_console_refuses_a_lifetime_above_the_cap(admin_client, console, org, settings):
    settings.OAUTH = {**settings.OAUTH, "SECRET_MAX_LIFETIME_DAYS_CAP": 30}
    change = reverse("admin:clients_organization_change", args=[quote(org.id)])
    response = admin_client.post(
        change,
        {
            "display_name": org.display_name,
            "on_leak": "revoke",
            "secret_max_lifetime_days": "31",
            **inline("memberships", []),
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert b"30" in response.content
    org.refresh_from_db()
    assert org.secret_max_lifetime_days is None
