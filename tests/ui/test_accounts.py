"""Sign-up, log in/out, password reset, home, and the activity page."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from clients.models import AuditEvent, Membership, Organization
from clients.services import client_create
from tests.conftest import PASSWORD, SYSTEM, post_form
from tests.ui.conftest import guide_form

pytestmark = pytest.mark.django_db

SIGNUP = {
    "email": "dev@newco.test",
    "organization_name": "NewCo",
    "password1": PASSWORD,
    "password2": PASSWORD,
}


def test_sign_up_creates_a_user_an_organization_and_its_owner(client):
    response = post_form(client, "/signup", SIGNUP)
    organization = Organization.objects.get(display_name="NewCo")
    assert response.status_code == 302
    assert response["Location"] == f"/orgs/{organization.id}/clients"
    user = get_user_model().objects.get(username="dev@newco.test")
    assert user.password.startswith("md5$")  # the suite's fast hasher; production: argon2
    membership = Membership.objects.get(user=user)
    assert membership.organization == organization and membership.role == "owner"
    assert AuditEvent.objects.filter(organization_id=organization.id, action="member.add")
    assert "Welcome! NewCo is ready." in client.get(response["Location"]).content.decode()


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


def test_sign_up_with_a_taken_email_is_refused(client, owner):
    response = post_form(client, "/signup", {**SIGNUP, "email": "OWNER@acme.test"})
    assert response.status_code == 400 and "log in instead" in response.content.decode()
    assert Organization.objects.count() == 1


def test_sign_up_can_be_turned_off(client, settings):
    settings.PORTAL_SIGNUP_ENABLED = False
    assert client.get("/signup").status_code == 404
    assert post_form(client, "/signup", SIGNUP).status_code == 404
    assert not Organization.objects.exists()


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
    assert response.status_code == 302 and response["Location"] == "/login"
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


def test_home_without_an_organization(client, db):
    assert client.get("/")["Location"] == "/login"
    user = get_user_model().objects.create_user(username="lonely@x.test", password=PASSWORD)
    client.force_login(user)
    assert "not in an organization yet" in client.get("/").content.decode()


def test_password_reset_by_email(client, owner):
    assert client.get("/password-reset/").status_code == 200
    response = post_form(client, "/password-reset/", {"email": "owner@acme.test"})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent"
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/password-reset/\S+)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    new = "another long passphrase 77"
    done = post_form(
        client, form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}
    )
    assert done.status_code == 302 and done["Location"] == "/password-reset/done"
    owner.refresh_from_db()
    assert owner.check_password(new)


def test_password_reset_for_an_unknown_email_sends_nothing(client, db):
    response = post_form(client, "/password-reset/", {"email": "nobody@x.test"})
    assert response.status_code == 302 and not mail.outbox


# --- Activity ------------------------------------------------------------------------------------


@pytest.fixture
def two_clients(org, catalog):
    first, _ = client_create(actor=SYSTEM, organization=org, name="first bot")
    second, _ = client_create(actor=SYSTEM, organization=org, name="second bot")
    return first, second


def test_the_owner_reads_the_activity_and_filters_it(as_owner, org, two_clients):
    first, second = two_clients
    post_form(as_owner, f"/orgs/{org.id}/clients/new", guide_form())
    body = as_owner.get(f"/orgs/{org.id}/audit").content.decode()
    assert "client.create" in body and "owner@acme.test" in body and "127.0.0.1" in body
    filtered = as_owner.get(f"/orgs/{org.id}/audit?client={first.id}").content.decode()
    assert first.id in filtered and second.id not in filtered.split("</select>")[1]


def test_a_viewer_reads_the_activity(as_viewer, org, two_clients):
    response = as_viewer.get(f"/orgs/{org.id}/audit")
    assert response.status_code == 200 and "client.create" in response.content.decode()


def test_the_outsider_gets_404_for_the_activity(as_outsider, org, two_clients, other_client):
    assert as_outsider.get(f"/orgs/{org.id}/audit").status_code == 404
    own = as_outsider.get(f"/orgs/{other_client.client.organization_id}/audit").content.decode()
    assert two_clients[0].id not in own


def test_the_activity_fragment_for_htmx(as_owner, org, two_clients):
    response = as_owner.get(
        f"/orgs/{org.id}/audit", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-table"
    )
    assert response.content.decode().lstrip().startswith('<div id="audit-table">')
