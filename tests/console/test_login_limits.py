"""``/admin/login/`` and the portal's ``/login`` share one set of failure counters
(oauth/logins.py): an account locked at one door is locked at the other."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import Client, RequestFactory

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

STAFF = "staff@provider.example"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser(username=STAFF, email=STAFF, password=PASSWORD)


def admin_login(browser: Client, password: str, ip: str = "203.0.113.10", username: str = STAFF):
    return browser.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def portal_login(browser: Client, password: str, ip: str = "203.0.113.10", username: str = STAFF):
    return browser.post("/login", {"username": username, "password": password}, REMOTE_ADDR=ip)


def is_signed_in(browser: Client) -> bool:
    return "_auth_user_id" in browser.session


def test_thirty_wrong_admin_passwords_then_the_right_one_is_refused(staff):
    for _ in range(30):
        assert admin_login(Client(), "wrong guess").status_code in (200, 429)
    browser = Client()
    response = admin_login(browser, PASSWORD)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert "Too many failed log-in attempts" in response.content.decode()
    assert not is_signed_in(browser)
    assert browser.get("/admin/").status_code == 302  # back to the log-in page


def test_the_admin_refuses_with_429_once_the_account_limit_is_reached(staff, settings):
    settings.RATE_LIMIT_LOGIN_FAILURES = "3/m"
    statuses = [admin_login(Client(), "wrong guess").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_locked_in_the_portal_is_locked_in_the_admin(staff, settings):
    settings.RATE_LIMIT_LOGIN_FAILURES = "3/m"
    for _ in range(3):
        assert portal_login(Client(), "wrong guess", ip="198.51.100.1").status_code == 200
    browser = Client()
    assert admin_login(browser, PASSWORD, ip="198.51.100.2").status_code == 429
    assert not is_signed_in(browser)


def test_locked_in_the_admin_is_locked_in_the_portal(staff, settings):
    settings.RATE_LIMIT_LOGIN_FAILURES = "3/m"
    for _ in range(3):
        assert admin_login(Client(), "wrong guess", ip="198.51.100.1").status_code == 200
    browser = Client()
    assert portal_login(browser, PASSWORD, ip="198.51.100.2").status_code == 429
    assert not is_signed_in(browser)


def test_the_backend_itself_refuses_a_locked_account(staff, settings):
    """A door without the polite 429 page still cannot try passwords past the limit."""
    settings.RATE_LIMIT_LOGIN_FAILURES = "2/m"
    request = RequestFactory().post("/anywhere", REMOTE_ADDR="198.51.100.3")
    assert authenticate(request, username=STAFF, password="wrong") is None
    assert authenticate(request, username=STAFF, password="wrong") is None
    assert authenticate(request, username=STAFF, password=PASSWORD) is None
    other = RequestFactory().post("/anywhere", REMOTE_ADDR="198.51.100.4")
    assert authenticate(other, username=STAFF, password=PASSWORD) is None  # the account's lock


def test_the_admin_address_limit_spares_other_addresses(staff, settings):
    settings.RATE_LIMIT_LOGIN_FAILURES = "1/m"  # ten failures per address
    for n in range(10):
        admin_login(Client(), "guess", ip="198.51.100.5", username=f"nobody{n}@x.example")
    assert admin_login(Client(), PASSWORD, ip="198.51.100.5").status_code == 429
    browser = Client()
    assert admin_login(browser, PASSWORD, ip="198.51.100.6").status_code == 302
    assert is_signed_in(browser)
