"""Behind a trusted proxy the portal sees each user's own address, not the proxy's.

The login lockout per address and the audit log's ``source_ip`` both come from
``portal.lib.net.client_ip``. Django's test Client connects from 127.0.0.1, which these tests
make the trusted proxy; the address it forwards is random per test, in 2001:db8::/32.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable

import pytest
from django.core import mail
from django.test import Client

from clients.models import AuditEvent, invitation_token
from clients.services import invitation_create
from oauth import ratelimit
from tests.conftest import PASSWORD, SYSTEM, logged_in, make_user, post_form, run_worker
from tests.ui.conftest import guide_form

pytestmark = pytest.mark.django_db

PROXY = "127.0.0.1"  # the test Client's REMOTE_ADDR


@pytest.fixture(autouse=True)
def behind_a_proxy(settings):
    # portal.lib.net caches parsed networks by the setting's value, so an override takes effect.
    settings.TRUSTED_PROXIES = [PROXY]
    # One failure per account and ten per address, in a window that a test does not outlast.
    settings.RATE_LIMIT_LOGIN_FAILURES = "1/h"


def fresh_address() -> str:
    """A new documentation address, written as ``client_ip`` writes it."""
    return str(ipaddress.IPv6Address(0x2001_0DB8 << 96 | secrets.randbits(96)))


def forwarded_for(address: str) -> dict[str, str]:
    # The left-most hop is the client's own claim; the proxy appended the address it saw.
    return {"HTTP_X_FORWARDED_FOR": f"198.51.100.66, {address}"}


def log_in(username: str, password: str, **meta: str):
    return Client().post("/login", {"username": username, "password": password}, **meta)


def exhaust_address_limit(run: str, meta_of_each: Callable[[], dict[str, str]]) -> None:
    """Fail to log in as many times as one address may, each time as a different account."""
    for n in range(ratelimit.LOGIN_ADDRESS_FACTOR):
        response = log_in(f"nobody{n}-{run}@acme.test", "guess", **meta_of_each())
        assert response.status_code == 200
        assert b"Please enter a correct" in response.content


def source_ip_of(action: str) -> str | None:
    return AuditEvent.objects.filter(action=action).latest("time", "id").source_ip


# --- Login lockout -------------------------------------------------------------------------------


def test_each_forwarded_address_has_its_own_login_failure_limit():
    run = secrets.token_hex(4)
    someone = make_user(f"someone-{run}@acme.test")
    noisy, quiet = fresh_address(), fresh_address()
    exhaust_address_limit(run, lambda: forwarded_for(noisy))
    response = log_in(someone.username, PASSWORD, **forwarded_for(noisy))
    assert response.status_code == 429
    assert b"Too many failed log-in attempts" in response.content
    # The same proxy, another user behind it: not locked out by the noisy one.
    assert log_in(someone.username, PASSWORD, **forwarded_for(quiet)).status_code == 302


def test_an_untrusted_peer_cannot_spread_its_failures_over_forged_addresses():
    run = secrets.token_hex(4)
    someone = make_user(f"someone-{run}@acme.test")
    peer = fresh_address()
    exhaust_address_limit(
        run, lambda: {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": fresh_address()}
    )
    forged = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": fresh_address()}
    assert log_in(someone.username, PASSWORD, **forged).status_code == 429
    assert log_in(someone.username, PASSWORD, **forwarded_for(fresh_address())).status_code == 302


# --- Audit events --------------------------------------------------------------------------------


def test_registering_a_client_records_the_forwarded_address(owner, org, catalog):
    address = fresh_address()
    path = f"/orgs/{org.id}/clients/new"
    response = post_form(logged_in(owner), path, guide_form(), **forwarded_for(address))
    assert response.status_code == 200
    assert source_ip_of("client.create") == address


def test_a_forged_forwarded_address_from_an_untrusted_peer_is_not_recorded(owner, org, catalog):
    peer = fresh_address()
    meta = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": fresh_address()}
    path = f"/orgs/{org.id}/clients/new"
    assert post_form(logged_in(owner), path, guide_form(), **meta).status_code == 200
    assert source_ip_of("client.create") == peer


def test_confirming_a_sign_up_records_the_forwarded_address(settings):
    settings.PORTAL_SIGNUP_ENABLED = True
    address = fresh_address()
    data = {
        "email": "dev@newco.test",
        "organization_name": "NewCo",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    assert post_form(Client(), "/signup", data, **forwarded_for(address)).status_code == 302
    run_worker()
    link = re.search(r"https?://[^/\s]+(/signup/confirm/\S+)", mail.outbox[0].body).group(1)
    address = fresh_address()  # the address that confirms opens the account
    assert Client().post(link, **forwarded_for(address)).status_code == 302
    assert source_ip_of("organization.create") == address
    assert source_ip_of("member.add") == address


@pytest.fixture
def invitation(org, owner):
    return invitation_create(
        actor=SYSTEM, organization=org, email="invitee@acme.test", role="viewer", invited_by=owner
    )


def test_joining_with_a_new_account_records_the_forwarded_address(invitation):
    address = fresh_address()
    path = f"/invitations/{invitation_token(invitation)}/register"
    data = {"password1": PASSWORD, "password2": PASSWORD}
    assert post_form(Client(), path, data, **forwarded_for(address)).status_code == 302
    assert source_ip_of("member.add") == address


def test_joining_with_an_existing_account_records_the_forwarded_address(invitation):
    address = fresh_address()
    invitee = logged_in(make_user("invitee@acme.test"))
    path = f"/invitations/{invitation_token(invitation)}/accept"
    assert invitee.post(path, **forwarded_for(address)).status_code == 302
    assert source_ip_of("member.add") == address
