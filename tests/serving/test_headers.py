"""Security headers on every HTML page, production cookies, and ``check --deploy`` clean."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from clients.services import secret_add
from tests.conftest import PASSWORD, SYSTEM, logged_in

ROOT = Path(__file__).resolve().parents[2]
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
# An executable inline script: a <script> without src (JSON data blocks are not executed).
INLINE_SCRIPT = re.compile(
    r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE
)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=\"|\son[a-z]+=\"", re.IGNORECASE)


def assert_secure_html(response, path: str) -> None:
    assert response.status_code == 200, (path, response.status_code)
    assert response["Content-Type"].startswith("text/html"), path
    assert response["Content-Security-Policy"] == CSP, path
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY", path
    assert response["X-Content-Type-Options"] == "nosniff", path
    assert response["Referrer-Policy"] == "same-origin", path
    html = response.content.decode()
    assert not INLINE_SCRIPT.findall(html), (path, INLINE_SCRIPT.findall(html))
    assert not INLINE_STYLE.findall(html), (path, INLINE_STYLE.findall(html))


@pytest.fixture
def pages(org, owner, guide_client):
    """Every page a GET can reach, for an owner of Acme and for the anonymous."""
    secret, _ = secret_add(actor=SYSTEM, client=guide_client.client)
    base = f"/orgs/{org.id}"
    client = f"{base}/clients/{guide_client.client_id}"
    return {
        "anonymous": ["/login", "/signup", "/password-reset/", "/password-reset/sent"],
        "owner": [
            f"{base}/clients",
            f"{base}/clients/new",
            client,
            f"{client}/delete/confirm",
            f"{client}/secrets/{secret.id}/revoke/confirm",
            f"{base}/audit",
            f"{base}/members",
        ],
    }


@pytest.mark.django_db
def test_every_portal_page_has_the_security_headers(pages, owner):
    for path in pages["anonymous"]:
        assert_secure_html(Client().get(path), path)
    browser = logged_in(owner)
    for path in pages["owner"]:
        assert_secure_html(browser.get(path), path)


@pytest.mark.django_db
def test_error_pages_have_them_too(org, owner):
    outsider = Client().get("/orgs/org_1/clients")  # a redirect to log in
    assert outsider["Content-Security-Policy"] == CSP
    missing = logged_in(owner).get("/orgs/org_1/clients")
    assert missing.status_code == 404
    assert missing["Content-Security-Policy"] == CSP
    assert missing["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_the_staff_console_needs_no_relaxation(guide_client):
    """Django's admin has no inline script or style: the same policy covers /admin/."""
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 12)
    admin_client = logged_in(root)
    for path in [
        "/admin/",
        "/admin/clients/organization/",
        "/admin/clients/apiclient/",
        "/admin/clients/apiclient/add/",
        "/admin/clients/auditevent/",
        "/admin/oauth/signingkey/",
        "/admin/auth/user/",
    ]:
        assert_secure_html(admin_client.get(path), path)


@pytest.mark.django_db
def test_json_answers_carry_the_policy(client):
    response = client.get("/.well-known/jwks.json")
    assert response["Content-Security-Policy"] == CSP
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_hsts_on_https_in_production(client, settings):
    assert django_settings.SECURE_HSTS_SECONDS == 31536000  # the production default (DEBUG off)
    response = client.get("/login", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    # Never on plain HTTP (RFC 6797 §7.2).
    assert "Strict-Transport-Security" not in client.get("/login")


@pytest.mark.django_db
def test_cookies_are_secure_httponly_and_samesite(settings, owner):
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    browser = Client(enforce_csrf_checks=False)
    page = browser.get("/login", secure=True)
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"
    response = browser.post(
        "/login", {"username": owner.username, "password": PASSWORD}, secure=True
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"


def production_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST", "SECURE_", "DEBUG"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "false",
            "SECRET_KEY": "prod-like-" + "x7Qp2mZ9vL4kR8sT1wY6" * 3,
            "ALLOWED_HOSTS": "auth.example.com",
            "DATABASE_URL": "sqlite:///:memory:",
            **extra,
        }
    )
    return env


def test_check_deploy_prints_no_warning():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNING" not in done.stdout + done.stderr


def test_check_deploy_would_complain_without_the_hardening():
    """The check above can fail: turn the production defaults off and it warns."""
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(SECURE_HSTS_SECONDS="0", SECURE_SSL_REDIRECT="false"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "security.W004" in done.stderr + done.stdout
    assert "security.W008" in done.stderr + done.stdout
