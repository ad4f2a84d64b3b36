"""Client pages: list, register, detail, edit, secrets, delete; owner, viewer, outsider."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from clients.models import ApiClient, ApiResource, ApiScope, AuditEvent, ClientSecret
from clients.services import client_create, organization_restrict_apis, secret_add
from portal.ui.timetags import ago
from tests.conftest import GUIDE_CLIENT, SYSTEM, Credentials, post_form, request_token
from tests.ui.conftest import guide_form

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r'<code id="client-secret">([^<]+)</code>')


def url(org, *parts: str) -> str:
    return "/orgs/" + "/".join([org.id, *parts])


def as_actor(request, actor: str) -> Client:
    return request.getfixturevalue(f"as_{actor}")


def plain_secret_in(response) -> str:
    match = SECRET_RE.search(response.content.decode())
    assert match, "the secret-once page shows the secret"
    return match.group(1)


@pytest.fixture
def acme_client(org, catalog) -> Credentials:
    client, secret = client_create(actor=SYSTEM, organization=org, **GUIDE_CLIENT)
    return Credentials(client, secret)


# --- List ----------------------------------------------------------------------------------------


def test_the_owner_sees_the_client_list(as_owner, org, acme_client):
    response = as_owner.get(url(org, "clients"))
    assert response.status_code == 200
    body = response.content.decode()
    assert acme_client.client_id in body and "GitHub Actions Deployment Service" in body
    assert "Register a client" in body
    assert acme_client.secret not in body


def test_a_viewer_sees_the_list_without_a_register_button(as_viewer, org, acme_client):
    response = as_viewer.get(url(org, "clients"))
    assert response.status_code == 200
    assert acme_client.client_id in response.content.decode()
    assert "Register a client" not in response.content.decode()


def test_the_outsider_gets_404_for_the_list(as_outsider, org, acme_client):
    assert as_outsider.get(url(org, "clients")).status_code == 404


def test_an_anonymous_visitor_is_sent_to_login(client, org):
    response = client.get(url(org, "clients"))
    assert response.status_code == 302 and response["Location"].startswith("/login?next=")


def test_the_list_searches_and_paginates(as_owner, org, catalog):
    for n in range(25):
        client_create(actor=SYSTEM, organization=org, name=f"bot {n:02d}")
    first = as_owner.get(url(org, "clients")).content.decode()
    assert "bot 00" in first and "bot 24" not in first and "Page 1 of 2" in first
    second = as_owner.get(url(org, "clients") + "?page=2").content.decode()
    assert "bot 24" in second
    found = as_owner.get(url(org, "clients") + "?q=bot 07").content.decode()
    assert "bot 07" in found and "bot 08" not in found
    none = as_owner.get(url(org, "clients") + "?q=nothing-like-this").content.decode()
    assert "No client matches" in none


def test_htmx_search_answers_with_the_table_fragment(as_owner, org, acme_client):
    response = as_owner.get(
        url(org, "clients") + "?q=GitHub", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="client-table"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="client-table">') and "<html" not in body


# --- Register ------------------------------------------------------------------------------------


def test_the_register_form_offers_the_catalog(as_owner, org, catalog):
    body = as_owner.get(url(org, "clients", "new")).content.decode()
    assert "deployment-api.acmecorp.com" in body and "deploy:applications" in body
    assert "Deploy applications" in body  # the scope's description
    assert 'name="nonce"' in body and 'for="id_name"' in body


@pytest.mark.parametrize(("actor", "status"), [("viewer", 403), ("outsider", 404)])
def test_others_cannot_open_the_register_form(request, org, catalog, actor, status):
    assert as_actor(request, actor).get(url(org, "clients", "new")).status_code == status


def test_registering_shows_the_secret_once_and_it_works(as_owner, org, catalog, client):
    response = post_form(as_owner, url(org, "clients", "new"), guide_form())
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    plain = plain_secret_in(response)
    created = ApiClient.objects.get(organization=org)
    assert created.scopes == GUIDE_CLIENT["scopes"]
    assert created.audience == GUIDE_CLIENT["audience"]
    assert created.custom_claims == GUIDE_CLIENT["custom_claims"]
    body = response.content.decode()
    assert "shown only once" in body
    assert f'-d "client_secret={plain}"' in body and "http://127.0.0.1:8000/oauth/token" in body
    # The secret is nowhere but in this response.
    assert plain not in str(dict(as_owner.session))
    assert plain not in str(list(AuditEvent.objects.values()))
    token = request_token(client, Credentials(created, plain))
    assert token.status_code == 200, token.content
    # The detail page afterwards shows the suffix only.
    detail = as_owner.get(url(org, "clients", created.id)).content.decode()
    assert plain not in detail and f"…{plain[-4:]}" in detail


def field_errors(body: str, field: str) -> list[str]:
    """The error messages shown beside ``field`` (inside its ``div.field``)."""
    block = re.search(rf'<div class="field[^"]*">\s*<label for="id_{field}">.*?</div>', body, re.S)
    assert block, f"no field {field}"
    return re.findall(r'<p class="error">([^<]*)</p>', block.group(0))


def test_a_resent_register_form_redirects_without_a_secret(as_owner, org, catalog):
    form_page = as_owner.get(url(org, "clients", "new")).content.decode()
    nonce = re.search(r'name="nonce" value="([^"]+)"', form_page).group(1)
    first = post_form(as_owner, url(org, "clients", "new"), [*guide_form(), ("nonce", nonce)])
    assert first.status_code == 200
    again = post_form(as_owner, url(org, "clients", "new"), [*guide_form(), ("nonce", nonce)])
    created = ApiClient.objects.get(organization=org)
    assert again.status_code == 302 and again["Location"] == url(org, "clients", created.id)
    assert ApiClient.objects.filter(organization=org).count() == 1


@pytest.mark.parametrize(("actor", "status"), [("viewer", 403), ("outsider", 404)])
def test_others_cannot_register_a_client(request, org, catalog, actor, status):
    response = post_form(as_actor(request, actor), url(org, "clients", "new"), guide_form())
    assert response.status_code == status
    assert not ApiClient.objects.filter(organization=org).exists()


def test_an_admin_may_register_a_client(as_admin, org, catalog):
    response = post_form(as_admin, url(org, "clients", "new"), guide_form())
    assert response.status_code == 200
    assert ApiClient.objects.filter(organization=org).count() == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scopes": ["admin:everything"]}, "Select a valid choice"),
        ({"audience": ["evil.example.com"]}, "Select a valid choice"),
        ({"expiry": "59"}, "between 60 and 86400"),
        ({"expiry": "86401"}, "between 60 and 86400"),
        ({"expiry": "soon"}, "Enter a whole number"),
        ({"name": ""}, "This field is required"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(as_owner, org, catalog, overrides, message):
    response = post_form(as_owner, url(org, "clients", "new"), guide_form(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ApiClient.objects.filter(organization=org).exists()
    assert 'id="client-secret"' not in response.content.decode()


def claim_row_errors(body: str) -> list[list[str]]:
    """The errors shown inside each claim row, row by row."""
    rows = re.findall(r'<div class="claim-row[^"]*">(.*?)</div>', body, re.S)
    return [re.findall(r'<p class="error claim-error">([^<]*)</p>', row) for row in rows]


def test_a_reserved_claim_is_refused_with_its_row(as_owner, org, catalog):
    data = [*guide_form(), ("claim_key", "sub"), ("claim_value", "someone-else")]
    response = post_form(as_owner, url(org, "clients", "new"), data)
    assert response.status_code == 400
    rows = claim_row_errors(response.content.decode())
    # The guide's two claims, the refused one (third) and the empty row to type into.
    assert [bool(errors) for errors in rows] == [False, False, True, False]
    assert "registered claim name" in rows[2][0]
    assert not ApiClient.objects.filter(organization=org).exists()


def test_every_mistake_shows_in_one_pass_beside_its_field(as_owner, org, catalog):
    data = guide_form(name="", expiry="59", scopes=["admin:everything"], description="a\x00b")
    data += [
        ("claim_key", "sub"),
        ("claim_value", "x"),
        ("claim_key", "1bad"),
        ("claim_value", "y"),
    ]
    response = post_form(as_owner, url(org, "clients", "new"), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert field_errors(body, "name") == ["This field is required."]
    assert "between 60 and 86400" in field_errors(body, "expiry")[0]
    assert field_errors(body, "description")
    assert "Select a valid choice" in body
    rows = claim_row_errors(body)
    assert "registered claim name" in rows[2][0] and "claim key starts with" in rows[3][0]
    assert not ApiClient.objects.filter(organization=org).exists()


def test_ticking_a_scope_ticks_its_api(as_owner, org, catalog):
    response = post_form(
        as_owner,
        url(org, "clients", "new"),
        guide_form(audience=[], scopes=["read:deployments", "read:invoices"]),
    )
    assert response.status_code == 200
    created = ApiClient.objects.get(organization=org)
    assert created.audience == ["deployment-api.acmecorp.com", "billing-api.acmecorp.com"]
    assert created.scopes == ["read:deployments", "read:invoices"]


def test_a_restricted_organization_cannot_grant_other_apis(as_owner, org, catalog):
    organization_restrict_apis(actor=SYSTEM, organization=org, apis=[catalog["billing"]])
    form = as_owner.get(url(org, "clients", "new")).content.decode()
    assert "billing-api.acmecorp.com" in form and "deployment-api.acmecorp.com" not in form
    response = post_form(as_owner, url(org, "clients", "new"), guide_form())
    assert response.status_code == 400
    assert not ApiClient.objects.filter(organization=org).exists()
    ok = post_form(
        as_owner,
        url(org, "clients", "new"),
        guide_form(audience=["billing-api.acmecorp.com"], scopes=["read:invoices"]),
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(("actor", "status"), [("owner", 200), ("viewer", 403), ("outsider", 404)])
def test_the_claim_row_fragment(request, org, actor, status):
    response = as_actor(request, actor).get(url(org, "clients", "claim-row"))
    assert response.status_code == status
    if status == 200:
        assert 'name="claim_key"' in response.content.decode()


# --- Detail and edit -----------------------------------------------------------------------------


def test_the_owner_sees_the_detail_with_change_buttons(as_owner, org, acme_client):
    body = as_owner.get(url(org, "clients", acme_client.client_id)).content.decode()
    assert f"…{acme_client.secret[-4:]}" in body and acme_client.secret not in body
    for button in ("Generate new secret", "Revoke", "Save changes", "Delete client"):
        assert button in body


def test_a_viewer_sees_the_detail_without_change_buttons(as_viewer, org, acme_client):
    response = as_viewer.get(url(org, "clients", acme_client.client_id))
    assert response.status_code == 200
    body = response.content.decode()
    assert "deploy:applications" in body and "github_repository=acmecorp/inventory-service" in body
    for button in (
        "Generate new secret",
        "Revoke",
        "Save changes",
        "Delete client",
        '<form method="post" action="/orgs',
    ):
        assert button not in body


def test_the_outsider_gets_404_for_the_detail(as_outsider, org, acme_client):
    assert as_outsider.get(url(org, "clients", acme_client.client_id)).status_code == 404


def test_the_outsider_gets_404_through_its_own_organization(as_outsider, other_org, acme_client):
    response = as_outsider.get(url(other_org, "clients", acme_client.client_id))
    assert response.status_code == 404


def test_the_owner_edits_a_client(as_owner, org, acme_client):
    data = guide_form(name="Renamed bot", scopes=["read:deployments"], expiry="600")
    response = post_form(as_owner, url(org, "clients", acme_client.client_id, "edit"), data)
    assert response.status_code == 302
    acme_client.client.refresh_from_db()
    assert acme_client.client.name == "Renamed bot"
    assert acme_client.client.scopes == ["read:deployments"] and acme_client.client.expiry == 600
    assert AuditEvent.objects.filter(action="client.update", target_id=acme_client.client_id)


def test_the_owner_requires_dpop_of_a_client(as_owner, org, acme_client):
    path = url(org, "clients", acme_client.client_id)
    assert "Require DPoP" in as_owner.get(path).content.decode()
    data = guide_form(dpop_bound_access_tokens="on")
    assert (
        post_form(as_owner, url(org, "clients", acme_client.client_id, "edit"), data).status_code
        == 302
    )
    acme_client.client.refresh_from_db()
    assert acme_client.client.dpop_bound_access_tokens is True
    page = as_owner.get(path).content.decode()
    assert 'name="dpop_bound_access_tokens"' in page and "checked" in page
    assert (
        post_form(
            as_owner, url(org, "clients", acme_client.client_id, "edit"), guide_form()
        ).status_code
        == 302
    )
    acme_client.client.refresh_from_db()
    assert acme_client.client.dpop_bound_access_tokens is False


def test_an_edit_keeps_what_the_provider_granted_outside_the_catalog(as_owner, org, catalog):
    # The provider (management API) granted an audience and a scope the catalog does not offer.
    created, _ = client_create(
        actor=SYSTEM,
        organization=org,
        name="Provider-made",
        audience=["deployment-api.acmecorp.com", "billing.internal"],
        scopes=["read:deployments", "billing:read"],
    )
    page = as_owner.get(url(org, "clients", created.id)).content.decode()
    assert 'id="provider-grants"' in page and "billing.internal" in page and "billing:read" in page
    data = guide_form(name="Renamed", scopes=["deploy:applications"])
    response = post_form(as_owner, url(org, "clients", created.id, "edit"), data)
    assert response.status_code == 302
    created.refresh_from_db()
    assert created.name == "Renamed"
    assert created.audience == ["deployment-api.acmecorp.com", "billing.internal"]
    assert created.scopes == ["deploy:applications", "billing:read"]


def test_a_bad_edit_changes_nothing(as_owner, org, acme_client):
    data = guide_form(name="Renamed", expiry="5")
    response = post_form(as_owner, url(org, "clients", acme_client.client_id, "edit"), data)
    assert response.status_code == 400 and "between 60 and 86400" in response.content.decode()
    acme_client.client.refresh_from_db()
    assert acme_client.client.name == GUIDE_CLIENT["name"]


@pytest.mark.parametrize(("actor", "status"), [("viewer", 403), ("outsider", 404)])
def test_others_cannot_edit(request, org, acme_client, actor, status):
    data = guide_form(name="Hijacked")
    response = post_form(
        as_actor(request, actor), url(org, "clients", acme_client.client_id, "edit"), data
    )
    assert response.status_code == status
    acme_client.client.refresh_from_db()
    assert acme_client.client.name == GUIDE_CLIENT["name"]


def test_edit_is_post_only(as_owner, org, acme_client):
    assert as_owner.get(url(org, "clients", acme_client.client_id, "edit")).status_code == 405


# --- Secrets -------------------------------------------------------------------------------------


def test_the_owner_generates_a_second_secret(as_owner, org, acme_client, client):
    response = as_owner.post(url(org, "clients", acme_client.client_id, "secrets", "new"))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    plain = plain_secret_in(response)
    assert plain != acme_client.secret
    assert request_token(client, Credentials(acme_client.client, plain)).status_code == 200
    assert request_token(client, acme_client).status_code == 200


def test_generating_past_the_limit_says_so(as_owner, org, acme_client):
    for _ in range(4):
        secret_add(actor=SYSTEM, client=acme_client.client)
    response = as_owner.post(url(org, "clients", acme_client.client_id, "secrets", "new"))
    assert response.status_code == 302
    page = as_owner.get(response["Location"]).content.decode()
    assert "at most 5 secrets" in page
    assert ClientSecret.objects.filter(client=acme_client.client).count() == 5


@pytest.mark.parametrize(("actor", "status"), [("viewer", 403), ("outsider", 404)])
def test_others_cannot_generate_a_secret(request, org, acme_client, actor, status):
    response = as_actor(request, actor).post(
        url(org, "clients", acme_client.client_id, "secrets", "new")
    )
    assert response.status_code == status
    assert ClientSecret.objects.filter(client=acme_client.client).count() == 1


def secret_of(creds: Credentials) -> ClientSecret:
    return ClientSecret.objects.get(client=creds.client)


@pytest.mark.parametrize(("actor", "status"), [("owner", 200), ("viewer", 403), ("outsider", 404)])
def test_the_revoke_confirmation(request, org, acme_client, actor, status):
    secret = secret_of(acme_client)
    path = url(org, "clients", acme_client.client_id, "secrets", secret.id, "revoke", "confirm")
    response = as_actor(request, actor).get(path)
    assert response.status_code == status
    if status == 200:
        assert "Yes, revoke" in response.content.decode()


def test_the_revoke_confirmation_is_a_row_for_htmx(as_owner, org, acme_client):
    secret = secret_of(acme_client)
    path = url(org, "clients", acme_client.client_id, "secrets", secret.id, "revoke", "confirm")
    body = as_owner.get(path, HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith("<tr") and "<html" not in body


def test_the_owner_revokes_a_secret_and_it_fails_at_once(as_owner, org, acme_client, client):
    secret = secret_of(acme_client)
    assert request_token(client, acme_client).status_code == 200
    response = as_owner.post(
        url(org, "clients", acme_client.client_id, "secrets", secret.id, "revoke")
    )
    assert response.status_code == 302
    assert not ClientSecret.objects.filter(pk=secret.pk).exists()
    assert request_token(client, acme_client).status_code == 401


def test_htmx_revoke_answers_with_the_secrets_section(as_owner, org, acme_client):
    secret = secret_of(acme_client)
    response = as_owner.post(
        url(org, "clients", acme_client.client_id, "secrets", secret.id, "revoke"),
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<section id="secrets"')
    assert f"Revoked the secret ending in {secret.secret_suffix}" in body  # out-of-band message


@pytest.mark.parametrize(("actor", "status"), [("viewer", 403), ("outsider", 404)])
def test_others_cannot_revoke(request, org, acme_client, actor, status):
    secret = secret_of(acme_client)
    response = as_actor(request, actor).post(
        url(org, "clients", acme_client.client_id, "secrets", secret.id, "revoke")
    )
    assert response.status_code == status
    assert ClientSecret.objects.filter(pk=secret.pk).exists()


def test_a_secret_of_another_client_is_404(as_owner, org, acme_client, other_client):
    other_secret = secret_of(other_client)
    path = url(org, "clients", acme_client.client_id, "secrets", other_secret.id, "revoke")
    assert as_owner.post(path).status_code == 404
    assert ClientSecret.objects.filter(pk=other_secret.pk).exists()


# --- Delete --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("actor", "status"), [("owner", 200), ("viewer", 403), ("outsider", 404)])
def test_the_delete_confirmation(request, org, acme_client, actor, status):
    path = url(org, "clients", acme_client.client_id, "delete", "confirm")
    assert as_actor(request, actor).get(path).status_code == status


def test_delete_needs_the_exact_name(as_owner, org, acme_client):
    path = url(org, "clients", acme_client.client_id, "delete")
    response = post_form(as_owner, path, {"name": "github actions deployment service"})
    assert response.status_code == 400 and "does not match" in response.content.decode()
    assert ApiClient.objects.filter(pk=acme_client.client_id).exists()


def test_the_owner_deletes_a_client(as_owner, org, acme_client, client):
    path = url(org, "clients", acme_client.client_id, "delete")
    response = post_form(as_owner, path, {"name": GUIDE_CLIENT["name"]})
    assert response.status_code == 302 and response["Location"] == url(org, "clients")
    assert not ApiClient.objects.filter(pk=acme_client.client_id).exists()
    assert request_token(client, acme_client).status_code == 401
    assert "Deleted GitHub Actions" in as_owner.get(url(org, "clients")).content.decode()


@pytest.mark.parametrize(("actor", "status"), [("viewer", 403), ("outsider", 404)])
def test_others_cannot_delete(request, org, acme_client, actor, status):
    path = url(org, "clients", acme_client.client_id, "delete")
    response = post_form(as_actor(request, actor), path, {"name": GUIDE_CLIENT["name"]})
    assert response.status_code == status
    assert ApiClient.objects.filter(pk=acme_client.client_id).exists()


def test_forms_need_a_csrf_token(owner, org, catalog):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    response = post_form(strict, url(org, "clients", "new"), guide_form())
    assert response.status_code == 403
    assert not ApiClient.objects.filter(organization=org).exists()


def test_a_claim_error_names_its_row(as_owner, org, catalog):
    data = [*guide_form(), ("claim_key", "sub"), ("claim_value", "x")]
    body = post_form(as_owner, url(org, "clients", "new"), data).content.decode()
    summary = re.search(r'<div class="errorbox".*?</div>', body, re.S).group(0)
    assert "Custom claim 3, key: &#x27;sub&#x27; is a registered claim name" in summary


INLINE = re.compile(r"<script(?![^>]*\bsrc=)|\sstyle=|\son[a-z]+=|javascript:", re.I)


def test_pages_hold_no_inline_script_or_style(as_owner, org, acme_client):
    """A Content-Security-Policy without 'unsafe-inline' is coming: keep every page ready."""
    secret_page = as_owner.post(url(org, "clients", acme_client.client_id, "secrets", "new"))
    pages = [
        secret_page,
        *(
            as_owner.get(url(org, *parts))
            for parts in (
                ("clients",),
                ("clients", "new"),
                ("clients", acme_client.client_id),
                ("clients", acme_client.client_id, "delete", "confirm"),
                ("audit",),
                ("members",),
            )
        ),
    ]
    for response in pages:
        assert response.status_code == 200
        assert not INLINE.search(response.content.decode()), response.request["PATH_INFO"]


# --- The management grant: never on an organization's client ------------------------------------


@pytest.fixture
def legacy_catalog(catalog, settings):
    """A catalog written before the rule (the services refuse it now): the management audience
    as an API, and the management scope offered by the deployment API."""
    management_api = ApiResource.objects.create(
        audience=settings.OAUTH["MANAGEMENT_AUDIENCE"], name="Management"
    )
    ApiScope.objects.create(api=management_api, name="read:everything")
    ApiScope.objects.create(api=catalog["deployment"], name="management")
    return catalog


MANAGEMENT_GRANTS = [
    (
        {"audience": ["http://127.0.0.1:8000/api/v1"], "scopes": ["read:everything"]},
        "audience",
        "management API&#x27;s audience",
    ),
    ({"scopes": ["read:deployments", "management"]}, "scopes", "management API&#x27;s scope"),
]


@pytest.mark.parametrize(("overrides", "field", "words"), MANAGEMENT_GRANTS)
def test_the_register_form_refuses_the_management_grant_on_its_field(
    as_owner, org, legacy_catalog, overrides, field, words
):
    response = post_form(as_owner, url(org, "clients", "new"), guide_form(**overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and "management API" in errors[field][0]
    assert words in response.content.decode()
    assert not ApiClient.objects.filter(organization=org).exists()


@pytest.mark.parametrize(("overrides", "field", "words"), MANAGEMENT_GRANTS)
def test_the_edit_form_refuses_the_management_grant_on_its_field(
    as_owner, org, legacy_catalog, acme_client, overrides, field, words
):
    path = url(org, "clients", acme_client.client_id, "edit")
    response = post_form(as_owner, path, guide_form(**overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and "management API" in errors[field][0]
    stored = ApiClient.objects.get(pk=acme_client.client_id)
    assert stored.scopes == GUIDE_CLIENT["scopes"] and stored.audience == GUIDE_CLIENT["audience"]


@pytest.mark.parametrize("field", ["name", "description"])
@pytest.mark.parametrize("bad", ["line\nbreak", "nul\x00", "tab\there"])
def test_a_control_character_is_a_field_error(as_owner, org, catalog, field, bad):
    response = post_form(as_owner, url(org, "clients", "new"), guide_form(**{field: bad}))
    assert response.status_code == 400
    errors = field_errors(response.content.decode(), field)
    assert any("control characters" in e or "Null characters" in e for e in errors), errors
    assert not ApiClient.objects.filter(organization=org).exists()


def test_the_catalog_page_lists_the_apis_and_their_scopes(as_viewer, org, catalog):
    response = as_viewer.get(url(org, "apis"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Deployment API" in body and "deployment-api.acmecorp.com" in body
    assert "deploy:applications" in body and "Deploy applications" in body
    organization_restrict_apis(actor=SYSTEM, organization=org, apis=[catalog["billing"]])
    body = as_viewer.get(url(org, "apis")).content.decode()
    assert "Billing API" in body and "Deployment API" not in body


def test_the_empty_client_list_shows_the_first_steps(as_owner, org, catalog):
    body = as_owner.get(url(org, "clients")).content.decode()
    assert "Get your first access token in three steps" in body
    assert url(org, "clients", "new") in body and url(org, "apis") in body


def test_a_revoked_secret_stays_listed_as_revoked(as_owner, owner, org, catalog):
    client, _ = client_create(actor=SYSTEM, organization=org, name="rotating")
    old = client.secrets.get()
    secret_add(actor=SYSTEM, client=client)
    response = post_form(as_owner, url(org, "clients", client.id, "secrets", old.id, "revoke"), {})
    assert response.status_code == 302
    body = as_owner.get(url(org, "clients", client.id)).content.decode()
    row = re.search(r'<tr class="revoked">(.*?)</tr>', body, re.S).group(1)
    assert f"…{old.secret_suffix}" in row and "Revoked" in row and "owner@acme.test" in row
    assert "just now" in row and not ClientSecret.objects.filter(pk=old.pk).exists()


def test_last_used_says_just_now_not_zero_minutes():
    now = timezone.now()
    assert ago(now - timedelta(seconds=5)) == "just now"
    assert ago(now - timedelta(minutes=3, seconds=5)) == "3\xa0minutes ago"
    assert ago(now - timedelta(hours=2, minutes=30)) == "2\xa0hours ago"
    assert ago(None) == ""


def test_the_summary_lists_every_mistake_with_its_field(as_owner, org, catalog):
    data = [*guide_form(name="", expiry="59"), ("claim_key", "sub"), ("claim_value", "x")]
    body = post_form(as_owner, url(org, "clients", "new"), data).content.decode()
    summary = re.search(r'<div class="errorbox".*?</div>', body, re.S).group(0)
    assert '<a href="#id_name">Name</a>: This field is required.' in summary
    assert '<a href="#id_expiry">Token lifetime (seconds)</a>: choose a lifetime' in summary
    assert "Custom claim 3, key:" in summary
