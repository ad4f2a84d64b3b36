"""Members and invitations: owners manage, others read; the last owner always stays."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.test import Client

from clients.models import INVITATION_SALT, AuditEvent, Invitation, Membership, invitation_token
from clients.services import invitation_create
from tests.conftest import PASSWORD, SYSTEM, logged_in, post_form, run_worker

pytestmark = pytest.mark.django_db


def membership(user, org) -> Membership:
    return Membership.objects.get(user=user, organization=org)


@pytest.mark.parametrize(("actor", "status"), [("owner", 200), ("viewer", 200), ("outsider", 404)])
def test_the_members_page(request, org, owner, viewer, actor, status):
    response = request.getfixturevalue(f"as_{actor}").get(f"/orgs/{org.id}/members")
    assert response.status_code == status
    if actor == "owner":
        assert "Send invitation" in response.content.decode()
    if actor == "viewer":
        body = response.content.decode()
        assert "owner@acme.test" in body
        assert "Send invitation" not in body and "Change role" not in body and "Remove" not in body


def test_the_owner_invites_by_email(as_owner, org, settings):
    settings.PORTAL_URL = "https://portal.example"
    data = {"email": "new@acme.test", "role": "admin"}
    response = post_form(as_owner, f"/orgs/{org.id}/members/invite", data, HTTP_HOST="localhost")
    assert response.status_code == 302
    invitation = Invitation.objects.get(organization=org)
    assert invitation.email == "new@acme.test" and invitation.role == "admin"
    assert not mail.outbox  # the worker sends it
    run_worker()
    assert mail.outbox[0].to == ["new@acme.test"]
    assert mail.outbox[0].subject == "You are invited to Acme Corp"
    link = f"https://portal.example/invitations/{invitation_token(invitation)}"
    assert link in mail.outbox[0].body  # the configured address, never the request's Host
    assert "owner@acme.test invited you" in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="invitation.create", organization_id=org.id)


def test_inviting_a_member_again_is_refused(as_owner, org, viewer):
    data = {"email": "viewer@acme.test", "role": "admin"}
    response = post_form(as_owner, f"/orgs/{org.id}/members/invite", data)
    assert response.status_code == 400 and "already a member" in response.content.decode()
    run_worker()
    assert not mail.outbox


@pytest.mark.parametrize(("actor", "status"), [("admin", 403), ("viewer", 403), ("outsider", 404)])
def test_others_cannot_invite(request, org, actor, status):
    client = request.getfixturevalue(f"as_{actor}")
    data = {"email": "x@acme.test", "role": "owner"}
    assert post_form(client, f"/orgs/{org.id}/members/invite", data).status_code == status
    run_worker()
    assert not Invitation.objects.exists() and not mail.outbox


def test_the_owner_changes_a_role(as_owner, org, viewer):
    target = membership(viewer, org)
    response = post_form(as_owner, f"/orgs/{org.id}/members/{target.pk}/role", {"role": "admin"})
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.role == "admin"


def test_the_last_owner_cannot_be_demoted(as_owner, org, owner):
    own = membership(owner, org)
    response = post_form(as_owner, f"/orgs/{org.id}/members/{own.pk}/role", {"role": "viewer"})
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.role == "owner"
    assert "needs an owner" in as_owner.get(response["Location"]).content.decode()


def test_a_bad_role_changes_nothing(as_owner, org, viewer):
    target = membership(viewer, org)
    post_form(as_owner, f"/orgs/{org.id}/members/{target.pk}/role", {"role": "god"})
    target.refresh_from_db()
    assert target.role == "viewer"


@pytest.mark.parametrize(("actor", "status"), [("viewer", 403), ("outsider", 404)])
def test_others_cannot_change_roles(request, org, viewer, actor, status):
    target = membership(viewer, org)
    client = request.getfixturevalue(f"as_{actor}")
    response = post_form(client, f"/orgs/{org.id}/members/{target.pk}/role", {"role": "owner"})
    assert response.status_code == status
    target.refresh_from_db()
    assert target.role == "viewer"


def test_the_owner_removes_a_member(as_owner, org, viewer):
    target = membership(viewer, org)
    assert as_owner.post(f"/orgs/{org.id}/members/{target.pk}/remove").status_code == 302
    assert not Membership.objects.filter(pk=target.pk).exists()


def test_the_last_owner_cannot_be_removed(as_owner, org, owner):
    own = membership(owner, org)
    as_owner.post(f"/orgs/{org.id}/members/{own.pk}/remove")
    assert Membership.objects.filter(pk=own.pk).exists()


def test_a_second_owner_may_leave(as_owner, org, owner, admin):
    Membership.objects.filter(user=admin).update(role="owner")
    own = membership(owner, org)
    response = as_owner.post(f"/orgs/{org.id}/members/{own.pk}/remove")
    assert response["Location"] == "/"
    assert not Membership.objects.filter(pk=own.pk).exists()


@pytest.mark.parametrize(("actor", "status"), [("viewer", 403), ("outsider", 404)])
def test_others_cannot_remove(request, org, owner, actor, status):
    own = membership(owner, org)
    client = request.getfixturevalue(f"as_{actor}")
    assert client.post(f"/orgs/{org.id}/members/{own.pk}/remove").status_code == status
    assert Membership.objects.filter(pk=own.pk).exists()


def test_a_member_of_another_organization_is_404(as_owner, org, outsider, other_org):
    theirs = membership(outsider, other_org)
    assert as_owner.post(f"/orgs/{org.id}/members/{theirs.pk}/remove").status_code == 404
    assert Membership.objects.filter(pk=theirs.pk).exists()


# --- Invitations ---------------------------------------------------------------------------------


@pytest.fixture
def invitation(org, owner) -> Invitation:
    return invitation_create(
        actor=SYSTEM, organization=org, email="invitee@acme.test", role="viewer", invited_by=owner
    )


def test_a_new_person_sets_a_password_and_joins(client, org, invitation):
    token = invitation_token(invitation)
    page = client.get(f"/invitations/{token}").content.decode()
    assert "Join Acme Corp" in page and "Choose a password" in page
    data = {"password1": PASSWORD, "password2": PASSWORD}
    response = post_form(client, f"/invitations/{token}/register", data)
    assert response.status_code == 302 and response["Location"] == f"/orgs/{org.id}/clients"
    user = get_user_model().objects.get(username="invitee@acme.test")
    assert membership(user, org).role == "viewer"
    # Single use: the link then has a page of its own that says so (410 Gone).
    used = client.get(f"/invitations/{token}")
    assert used.status_code == 410 and "already used" in used.content.decode()
    assert post_form(client, f"/invitations/{token}/register", data).status_code == 410


def test_a_weak_password_is_refused_on_invitation(client, invitation):
    token = invitation_token(invitation)
    data = {"password1": "invitee", "password2": "invitee"}
    assert post_form(client, f"/invitations/{token}/register", data).status_code == 400
    assert not get_user_model().objects.filter(username="invitee@acme.test").exists()


def test_an_existing_user_joins_with_their_account(org, invitation, other_org):
    user = get_user_model().objects.create_user(
        username="invitee@acme.test", email="invitee@acme.test", password=PASSWORD
    )
    Membership.objects.create(user=user, organization=other_org, role="owner")
    token = invitation_token(invitation)
    anonymous_page = Client().get(f"/invitations/{token}").content.decode()
    assert "Log in to accept" in anonymous_page
    client = logged_in(user)
    response = client.post(f"/invitations/{token}/accept")
    assert response.status_code == 302
    assert membership(user, org).role == "viewer"  # now in two organizations


def test_someone_else_cannot_accept_an_invitation(as_outsider, outsider, org, invitation):
    token = invitation_token(invitation)
    response = as_outsider.post(f"/invitations/{token}/accept")
    assert response.status_code == 302
    assert not Membership.objects.filter(user=outsider, organization=org).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_time is None


def test_a_forged_invitation_is_404_and_an_expired_one_says_so(client, invitation, settings):
    forged = signing.dumps(invitation.pk, salt="something-else")
    page = client.get(f"/invitations/{forged}")
    assert page.status_code == 404 and "link is not valid" in page.content.decode()
    token = invitation_token(invitation)
    settings.PORTAL_INVITATION_MAX_AGE = -1
    page = client.get(f"/invitations/{token}")
    assert page.status_code == 410 and "has expired" in page.content.decode()
    data = {"password1": PASSWORD, "password2": PASSWORD}
    assert post_form(client, f"/invitations/{token}/register", data).status_code == 410
    assert not get_user_model().objects.filter(username=invitation.email).exists()


def test_the_invitation_token_holds_only_the_id(invitation):
    token = invitation_token(invitation)
    assert signing.loads(token, salt=INVITATION_SALT) == invitation.pk
    assert re.fullmatch(r"[\w:.-]+", token)


def test_invitations_expire_after_seven_days_by_default():
    from portal import settings as production

    assert production.PORTAL_INVITATION_MAX_AGE == 7 * 24 * 3600


# --- Open invitations: no duplicates, cancel, resend -----------------------------------------


def test_an_address_with_an_open_invitation_is_not_invited_twice(as_owner, org, invitation):
    data = {"email": "INVITEE@acme.test", "role": "admin"}
    response = post_form(as_owner, f"/orgs/{org.id}/members/invite", data)
    assert response.status_code == 400
    assert "is invited already" in response.context["invite_form"].errors["email"][0]
    assert Invitation.objects.filter(organization=org).count() == 1


def test_an_invitation_form_sent_twice_invites_once(as_owner, org):
    page = as_owner.get(f"/orgs/{org.id}/members").content.decode()
    nonce = re.search(r'name="nonce" value="([^"]+)"', page).group(1)
    data = {"email": "new@acme.test", "role": "viewer", "nonce": nonce}
    assert post_form(as_owner, f"/orgs/{org.id}/members/invite", data).status_code == 302
    again = post_form(as_owner, f"/orgs/{org.id}/members/invite", data)
    assert again.status_code == 302
    assert "already sent" in as_owner.get(again["Location"]).content.decode()
    assert Invitation.objects.filter(organization=org).count() == 1


def test_the_owner_cancels_an_invitation_and_its_link_says_so(as_owner, client, org, invitation):
    token = invitation_token(invitation)
    url = f"/orgs/{org.id}/invitations/{invitation.pk}/cancel"
    assert post_form(as_owner, url, {}).status_code == 302
    assert not Invitation.objects.filter(pk=invitation.pk).exists()
    event = AuditEvent.objects.get(action="invitation.cancel")
    assert event.details["email"] == "invitee@acme.test"
    page = client.get(f"/invitations/{token}")
    assert page.status_code == 410 and "no longer valid" in page.content.decode()
    # Cancelled already: the invitation is gone for this organization.
    assert post_form(as_owner, url, {}).status_code == 404
    # The address may be invited again.
    data = {"email": "invitee@acme.test", "role": "viewer"}
    assert post_form(as_owner, f"/orgs/{org.id}/members/invite", data).status_code == 302


def test_the_owner_resends_an_invitation_with_a_fresh_link(as_owner, client, org, invitation):
    run_worker()
    mail.outbox.clear()
    url = f"/orgs/{org.id}/invitations/{invitation.pk}/resend"
    response = post_form(as_owner, url, {})
    assert response.status_code == 302
    assert "again" in as_owner.get(response["Location"]).content.decode()
    run_worker()
    (sent,) = mail.outbox
    assert sent.to == ["invitee@acme.test"]
    link = re.search(r"/invitations/\S+", sent.body).group(0)
    assert client.get(link).status_code == 200
    assert AuditEvent.objects.filter(action="invitation.resend").count() == 1


def test_a_used_invitation_cannot_be_cancelled_or_resent(as_owner, org, invitation):
    Invitation.objects.filter(pk=invitation.pk).update(accepted_time="2026-01-01T00:00:00Z")
    for action in ("cancel", "resend"):
        url = f"/orgs/{org.id}/invitations/{invitation.pk}/{action}"
        assert post_form(as_owner, url, {}).status_code == 404


def test_an_admin_cannot_cancel_or_resend(as_admin, org, invitation):
    for action in ("cancel", "resend"):
        url = f"/orgs/{org.id}/invitations/{invitation.pk}/{action}"
        assert post_form(as_admin, url, {}).status_code == 403
    assert Invitation.objects.filter(pk=invitation.pk).exists()


def test_the_members_page_offers_resend_and_cancel(as_owner, org, invitation):
    body = as_owner.get(f"/orgs/{org.id}/members").content.decode()
    assert f"/invitations/{invitation.pk}/resend" in body
    assert f"/invitations/{invitation.pk}/cancel" in body
