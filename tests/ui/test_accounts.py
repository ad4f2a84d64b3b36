"""Sign-up, log in/out, password reset, home, and the activity page."""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from contextlib import contextmanager

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from clients.models import AuditEvent, Membership, Organization, OutboxTask, invitation_token
from clients.services import (
    Actor,
    client_create,
    client_update,
    invitation_create,
    secret_add,
    secret_delete,
)
from portal.ui.views import audit as audit_views
from tests.conftest import GUIDE_CLIENT, PASSWORD, SYSTEM, post_form, run_worker
from tests.ui.conftest import guide_form

pytestmark = pytest.mark.django_db

SIGNUP = {
    "email": "dev@newco.test",
    "organization_name": "NewCo",
    "password1": PASSWORD,
    "password2": PASSWORD,
}


def mailed_path(message, prefix: str) -> str:
    """The path of the portal link in ``message`` that starts with ``prefix``; it must be on
    ``settings.PORTAL_URL``, whatever Host the request had."""
    found = re.search(r"(https?://[^/\s]+)(" + re.escape(prefix) + r"\S*)", message.body)
    assert found, message.body
    assert found.group(1) == django_settings.PORTAL_URL
    return found.group(2)


def sign_up(client, **overrides):
    response = post_form(client, "/signup", {**SIGNUP, **overrides}, HTTP_HOST="localhost")
    assert response.status_code == 302 and response["Location"] == "/signup/sent"
    return response


def test_sign_up_opens_the_account_only_through_the_mailed_link(client, settings):
    settings.PORTAL_URL = "https://portal.example"
    sign_up(client)
    assert "Check your email" in client.get("/signup/sent").content.decode()
    user = get_user_model().objects.get(username="dev@newco.test")
    assert not user.is_active and not Organization.objects.exists()
    assert not mail.outbox  # sent by the worker, never inside the request
    assert (
        post_form(client, "/login", {"username": SIGNUP["email"], "password": PASSWORD}).status_code
        == 200
    )
    run_worker()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dev@newco.test"]
    assert PASSWORD not in mail.outbox[0].body
    link = mailed_path(mail.outbox[0], "/signup/confirm/")
    page = client.get(link)
    assert page.status_code == 200 and "NewCo" in page.content.decode()
    assert not Organization.objects.exists()  # opening the link (a mail scanner) opens nothing
    response = client.post(link)
    organization = Organization.objects.get(display_name="NewCo")
    assert response.status_code == 302
    assert response["Location"] == f"/orgs/{organization.id}/clients"
    user.refresh_from_db()
    assert user.is_active and user.password.startswith("md5$")  # the suite's fast hasher
    membership = Membership.objects.get(user=user)
    assert membership.organization == organization and membership.role == "owner"
    assert AuditEvent.objects.filter(organization_id=organization.id, action="member.add")
    assert "Welcome! NewCo is ready." in client.get(response["Location"]).content.decode()
    # The link works once.
    assert Client().post(link).status_code == 404
    assert Client().get(link).status_code == 404
    assert Organization.objects.count() == 1


def test_sign_up_with_a_taken_email_answers_the_same_and_mails_the_owner(client, owner):
    password_before = owner.password
    first = sign_up(client, email="OWNER@acme.test")
    assert first.content == sign_up(Client(), email="new@acme.test").content
    owner.refresh_from_db()
    assert owner.password == password_before and owner.is_active
    assert Organization.objects.count() == 1
    run_worker()
    mails = {m.to[0].lower(): m for m in mail.outbox}
    existing = mails["owner@acme.test"]
    assert "already has an account" in existing.body
    assert "/signup/confirm/" not in existing.body and "/password-reset/" in existing.body
    assert "/signup/confirm/" in mails["new@acme.test"].body


def test_a_second_sign_up_of_a_pending_address_replaces_the_first(client):
    sign_up(client)
    run_worker()
    first_link = mailed_path(mail.outbox[0], "/signup/confirm/")
    sign_up(
        client, organization_name="Other name", password1="x" + PASSWORD, password2="x" + PASSWORD
    )
    run_worker()
    second_link = mailed_path(mail.outbox[1], "/signup/confirm/")
    assert Client().post(first_link).status_code == 404  # superseded
    assert Client().post(second_link).status_code == 302
    assert Organization.objects.get().display_name == "Other name"
    user = get_user_model().objects.get(username="dev@newco.test")
    assert user.check_password("x" + PASSWORD)


@pytest.mark.parametrize("tamper", ["expired", "forged", "account gone"])
def test_a_bad_confirmation_link_opens_nothing(client, settings, tamper):
    sign_up(client)
    run_worker()
    link = mailed_path(mail.outbox[0], "/signup/confirm/")
    if tamper == "expired":
        settings.PORTAL_SIGNUP_CONFIRM_MAX_AGE = -1
    elif tamper == "forged":
        link = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    else:
        get_user_model().objects.all().delete()
    assert client.get(link).status_code == 404
    assert client.post(link).status_code == 404
    assert not Organization.objects.exists()


def test_inviting_a_pending_address_opens_its_account_with_the_invitation(client, org, owner):
    sign_up(client, email="invitee@acme.test")
    invitation = invitation_create(
        actor=SYSTEM, organization=org, email="invitee@acme.test", role="viewer", invited_by=owner
    )
    new = "invited passphrase 1234"
    response = post_form(
        Client(),
        f"/invitations/{invitation_token(invitation)}/register",
        {"password1": new, "password2": new},
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(username="invitee@acme.test")
    assert user.is_active and user.check_password(new)


def test_production_hashes_passwords_with_argon2():
    from portal import settings as production

    assert production.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password2": "something else entirely"}, "the two passwords differ"),
        ({"password1": "short", "password2": "short"}, "too short"),
        ({"email": "not-an-email"}, "Enter a valid email address"),
        ({"organization_name": ""}, "This field is required"),
    ],
)
def test_bad_sign_up_is_refused(client, overrides, message):
    response = post_form(client, "/signup", {**SIGNUP, **overrides})
    assert response.status_code == 400 and message in response.content.decode()
    assert not Organization.objects.exists()


def test_sign_up_can_be_turned_off(client, settings):
    settings.PORTAL_SIGNUP_ENABLED = False
    assert client.get("/signup").status_code == 404
    assert post_form(client, "/signup", SIGNUP).status_code == 404
    assert client.get("/signup/sent").status_code == 404
    assert not Organization.objects.exists() and not OutboxTask.objects.exists()


def test_the_password_never_reaches_a_log(client, caplog):
    with caplog.at_level(logging.DEBUG):
        post_form(client, "/signup", {**SIGNUP, "password2": "mismatch " + PASSWORD})
    assert PASSWORD not in caplog.text


def test_log_in_and_out(client, owner, org):
    page = client.get("/login")
    assert page.status_code == 200 and 'for="id_username"' in page.content.decode()
    response = post_form(client, "/login", {"username": "owner@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    assert client.get("/logout").status_code == 405  # logging out is a POST
    response = client.post("/logout")
    assert response.status_code == 302 and response["Location"] == "/"
    landing = client.get("/").content.decode()
    assert "You are logged out." in landing and "Sign up" in landing
    assert client.get(f"/orgs/{org.id}/clients").status_code == 302


def test_a_wrong_password_is_refused(client, owner):
    response = post_form(client, "/login", {"username": "owner@acme.test", "password": "nope"})
    assert response.status_code == 200 and "Please enter a correct" in response.content.decode()


def test_home_goes_to_the_last_organization(as_owner, owner, org, other_org):
    Membership.objects.create(user=owner, organization=other_org, role="viewer")
    assert as_owner.get("/")["Location"] == f"/orgs/{org.id}/clients"
    as_owner.get(f"/orgs/{other_org.id}/clients")  # switching: just open it
    assert as_owner.get("/")["Location"] == f"/orgs/{other_org.id}/clients"
    body = as_owner.get(f"/orgs/{other_org.id}/clients").content.decode()
    assert "Acme Corp" in body and "Globex" in body  # the switcher lists both


def test_the_landing_page_says_what_the_portal_is_for(client, db, settings):
    page = client.get("/")
    body = page.content.decode()
    assert page.status_code == 200 and "Give your services access to our APIs" in body
    assert 'href="/signup"' in body and 'href="/login"' in body
    settings.PORTAL_SIGNUP_ENABLED = False
    assert 'href="/signup"' not in client.get("/").content.decode()


def test_home_without_an_organization(client, db):
    user = get_user_model().objects.create_user(username="lonely@x.test", password=PASSWORD)
    client.force_login(user)
    assert "not in an organization yet" in client.get("/").content.decode()


def test_password_reset_by_email(client, owner, settings):
    settings.PORTAL_URL = "https://portal.example"
    assert client.get("/password-reset/").status_code == 200
    response = post_form(
        client, "/password-reset/", {"email": "owner@acme.test"}, HTTP_HOST="localhost"
    )
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent"
    assert not mail.outbox  # the worker sends it, never the request
    run_worker()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["owner@acme.test"]
    link = mailed_path(mail.outbox[0], "/password-reset/")
    form = client.get(link, follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    new = "another long passphrase 77"
    done = post_form(
        client, form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}
    )
    assert done.status_code == 302 and done["Location"] == "/password-reset/done"
    owner.refresh_from_db()
    assert owner.check_password(new)


def test_password_reset_answers_and_works_the_same_for_an_unknown_email(client, owner):
    known = post_form(client, "/password-reset/", {"email": "owner@acme.test"})
    unknown = post_form(Client(), "/password-reset/", {"email": "nobody@x.test"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    tasks = OutboxTask.objects.order_by("id")
    assert [t.kind for t in tasks] == ["account.password_reset"] * 2  # a task either way
    run_worker()
    assert [m.to for m in mail.outbox] == [["owner@acme.test"]]
    assert set(OutboxTask.objects.values_list("status", flat=True)) == {"done"}


def reset(email: str, ip: str):
    return post_form(Client(), "/password-reset/", {"email": email}, REMOTE_ADDR=ip)


def test_password_reset_is_limited_per_target_address(owner, settings):
    settings.RATE_LIMIT_PASSWORD_RESET = "3/h"
    for n in range(3):
        assert reset("owner@acme.test", f"198.51.100.{n}").status_code == 302
    refused = reset("OWNER@acme.test", "198.51.100.99")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Too many reset requests" in refused.content.decode()
    assert OutboxTask.objects.count() == 3
    assert reset("someone-else@acme.test", "198.51.100.99").status_code == 302


def test_password_reset_is_limited_per_requesting_address(owner, settings):
    settings.RATE_LIMIT_PASSWORD_RESET = "3/h"
    for n in range(3):
        assert reset(f"nobody{n}@x.test", "198.51.100.7").status_code == 302
    assert reset("owner@acme.test", "198.51.100.7").status_code == 429
    assert OutboxTask.objects.count() == 3
    assert reset("owner@acme.test", "198.51.100.8").status_code == 302


# --- Activity ------------------------------------------------------------------------------------


@contextmanager
def override_events_per_page(n: int):
    before = audit_views.EVENTS_PER_PAGE
    audit_views.EVENTS_PER_PAGE = n
    try:
        yield
    finally:
        audit_views.EVENTS_PER_PAGE = before


@pytest.fixture
def two_clients(org, catalog):
    first, _ = client_create(actor=SYSTEM, organization=org, name="first bot")
    second, _ = client_create(actor=SYSTEM, organization=org, name="second bot")
    return first, second


def sentences(body: str) -> list[str]:
    return [html.unescape(s) for s in re.findall(r'<p class="sentence">([^<]*)</p>', body)]


def test_the_owner_reads_the_activity_as_sentences(as_owner, org, two_clients):
    first, _ = two_clients
    post_form(as_owner, f"/orgs/{org.id}/clients/new", guide_form())
    body = as_owner.get(f"/orgs/{org.id}/audit").content.decode()
    said = sentences(body)
    assert f"owner@acme.test registered client {GUIDE_CLIENT['name']}" in said
    assert "client.create" not in body and "127.0.0.1" in body
    filtered = as_owner.get(f"/orgs/{org.id}/audit?client={first.id}").content.decode()
    assert sentences(filtered) == [
        f"tests generated secret …{first.secrets.get().secret_suffix} of first bot",
        "tests registered client first bot",
    ]


def test_a_revoked_secret_and_a_deleted_client_read_with_their_names(as_owner, org, two_clients):
    first, _ = two_clients
    secret = first.secrets.get()
    post_form(as_owner, f"/orgs/{org.id}/clients/{first.id}/secrets/{secret.id}/revoke", {})
    post_form(as_owner, f"/orgs/{org.id}/clients/{first.id}/delete", {"name": "first bot"})
    said = sentences(as_owner.get(f"/orgs/{org.id}/audit?client={first.id}").content.decode())
    assert said[:2] == [
        "owner@acme.test deleted client first bot",
        f"owner@acme.test revoked secret …{secret.secret_suffix} of first bot",
    ]


def test_an_update_says_what_changed(as_owner, owner, org, two_clients):
    first, _ = two_clients
    client_update(actor=Actor.for_user(owner), client=first, name="renamed", expiry=600)
    said = sentences(as_owner.get(f"/orgs/{org.id}/audit?kind=client").content.decode())
    assert said[0] == (
        "owner@acme.test updated client renamed "
        "(token lifetime: 3600 → 600; name: first bot → renamed)"
    )


def test_the_activity_filters_by_person_kind_and_day(as_owner, owner, org, two_clients):
    first, _ = two_clients
    secret_add(actor=Actor.for_user(owner), client=first)
    mine = sentences(as_owner.get(f"/orgs/{org.id}/audit?person={owner.pk}").content.decode())
    assert len(mine) == 1 and mine[0].startswith("owner@acme.test generated secret")
    kinds = sentences(as_owner.get(f"/orgs/{org.id}/audit?kind=secret").content.decode())
    assert len(kinds) == 3 and all("secret" in s for s in kinds)
    today = timezone.localdate()
    day = as_owner.get(f"/orgs/{org.id}/audit?since={today}&until={today}").content.decode()
    assert len(sentences(day)) == 6  # the organization, two clients, three secrets
    later = today + dt.timedelta(days=1)
    assert sentences(as_owner.get(f"/orgs/{org.id}/audit?since={later}").content.decode()) == []
    backwards = as_owner.get(f"/orgs/{org.id}/audit?since={later}&until={today}")
    assert backwards.status_code == 200
    assert "the last day comes on or after the first" in backwards.content.decode()
    bad = as_owner.get(f"/orgs/{org.id}/audit?since=yesterday&kind=nonsense&person=999")
    assert bad.status_code == 200 and len(sentences(bad.content.decode())) == 6


def test_the_activity_pages_keep_their_filters(as_owner, org, two_clients):
    first, _ = two_clients
    for _ in range(3):
        for secret in first.secrets.all():
            secret_delete(actor=SYSTEM, secret=secret)
        secret_add(actor=SYSTEM, client=first)
    with override_events_per_page(2):
        body = as_owner.get(f"/orgs/{org.id}/audit?kind=secret").content.decode()
    assert len(sentences(body)) == 2
    assert "?page=2&amp;kind=secret" in body


def test_the_outsider_gets_404_for_the_activity(as_outsider, org, two_clients, other_client):
    assert as_outsider.get(f"/orgs/{org.id}/audit").status_code == 404
    own = as_outsider.get(f"/orgs/{other_client.client.organization_id}/audit").content.decode()
    assert two_clients[0].id not in own


def test_the_activity_fragment_for_htmx(as_owner, org, two_clients):
    response = as_owner.get(
        f"/orgs/{org.id}/audit", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-table"
    )
    assert response.content.decode().lstrip().startswith('<div id="audit-table">')


def confirmed_sign_up(client, email: str) -> None:
    sign_up(client, email=email)
    run_worker()
    link = mailed_path(mail.outbox[-1], "/signup/confirm/")
    assert post_form(client, link, {}).status_code == 302
    client.logout()


@pytest.mark.parametrize(
    "typed", ["Mixed.Case@Example.COM", "mixed.case@example.com", " MIXED.CASE@EXAMPLE.COM "]
)
def test_log_in_works_with_any_capitalisation_of_the_address(client, typed):
    confirmed_sign_up(client, "Mixed.Case@Example.COM")
    assert get_user_model().objects.get().username == "mixed.case@example.com"
    response = post_form(client, "/login", {"username": typed, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()
    assert client.get("/").status_code == 302  # logged in: home opens the organization


def test_sign_up_in_another_capitalisation_opens_no_second_account(client):
    confirmed_sign_up(client, "dev@newco.test")
    sign_up(client, email="DEV@NewCo.test")
    assert get_user_model().objects.count() == 1


def test_an_invitation_to_a_capitalised_address_is_one_for_its_account(org, owner):
    invitation = invitation_create(
        actor=SYSTEM,
        organization=org,
        email="New.Person@ACME.test",
        role="viewer",
        invited_by=owner,
    )
    assert invitation.email == "new.person@acme.test"


def test_the_log_in_and_reset_fields_say_e_mail(client):
    for path in ("/login", "/password-reset/", "/signup"):
        body = client.get(path).content.decode()
        assert ">E-mail</label>" in body and "Username" not in body


@pytest.mark.parametrize("bad", ["Acme\nBcc: evil@evil.test", "Acme\x00", "Acme\rCorp"])
def test_an_organization_name_with_a_control_character_is_a_field_error(client, bad):
    response = post_form(client, "/signup", {**SIGNUP, "organization_name": bad})
    assert response.status_code == 400
    errors = response.context["form"].errors["organization_name"]
    assert any("control characters" in e or "Null characters" in e for e in errors), errors
    assert not get_user_model().objects.exists() and not OutboxTask.objects.exists()
