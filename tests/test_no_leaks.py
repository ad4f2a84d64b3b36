"""No secret in the logs, no stack trace on an error page.

The leak test drives a real gunicorn at LOG_LEVEL=DEBUG through token requests (form, Basic,
wrong secrets), the management API (a client and a secret created: plain secrets in the
answers), and the portal (sign-up, a failed and a good log-in), then searches everything the
server wrote for each plain secret, password, access token and client assertion it saw.
"""

from __future__ import annotations

import base64
import json
import re

import pytest
import requests
from django.test import Client

from tests.e2e.server import ServerDatabase, ServerProcess


@pytest.mark.django_db
def test_a_production_500_is_our_page_without_a_trace(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.urls_boom"
    response = Client(raise_request_exception=False).get("/boom")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    for leak in ("Traceback", "RuntimeError", "hunter2", "boom", "Django", "settings"):
        assert leak not in html, leak
    assert response["Content-Security-Policy"].startswith("default-src 'self'")


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, html[:200]
    return found.group(1)


@pytest.mark.e2e
def test_debug_logs_hold_no_secret_token_or_password(tmp_path):
    database = ServerDatabase(tmp_path)
    server = ServerProcess(
        database,
        extra_env={
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "json",
            "GUNICORN_LOGLEVEL": "debug",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        },
    )
    worker_output = ""
    seen: list[str] = []
    try:
        server.start(tmp_path, workers=2)
        url = server.url
        made = json.loads(server.manage("create_management_client", "--name", "leaks").stdout)
        seen.append(made["client_secret"])
        for data, headers in [
            ({"grant_type": "client_credentials", **made}, {}),
            (
                {"grant_type": "client_credentials"},
                {
                    "Authorization": "Basic "
                    + base64.b64encode(
                        f"{made['client_id']}:{made['client_secret']}".encode()
                    ).decode()
                },
            ),
            (
                {
                    "grant_type": "client_credentials",
                    "client_id": made["client_id"],
                    "client_secret": "wrong-secret-value-LEAKCANARY1",
                },
                {},
            ),
            (
                {
                    "grant_type": "client_credentials",
                    "client_assertion": "eyJhbGciOi.LEAKCANARY2.sig",
                    "client_assertion_type": JWT_BEARER,
                },
                {},
            ),
        ]:
            response = requests.post(
                f"{url}/oauth/token?client_secret={made['client_secret']}",
                data=data,
                headers=headers,
                timeout=10,
            )
            if response.status_code == 200:
                seen.append(response.json()["access_token"])
        seen += ["wrong-secret-value-LEAKCANARY1", "LEAKCANARY2"]
        auth = {"Authorization": f"Bearer {seen[1]}"}
        org = requests.post(
            f"{url}/api/v1/organizations", json={"display_name": "Leaky"}, headers=auth, timeout=10
        ).json()["organization"]
        created = requests.post(
            f"{url}/api/v1/organizations/{org['id']}/clients",
            json={"name": "leak test"},
            headers=auth,
            timeout=10,
        ).json()
        seen.append(created["plain_secret"])
        client_url = f"{url}/api/v1/organizations/{org['id']}/clients"
        secrets_url = f"{client_url}/{created['client']['client_id']}/secrets"
        seen.append(requests.post(secrets_url, headers=auth, timeout=10).json()["plain_secret"])
        token = requests.post(
            f"{url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": created["client"]["client_id"],
                "client_secret": created["plain_secret"],
            },
            timeout=10,
        ).json()["access_token"]
        seen.append(token)

        browser = requests.Session()
        password = "portal passphrase LEAKCANARY3"
        page = browser.get(f"{url}/signup", timeout=10).text
        signed_up = browser.post(
            f"{url}/signup",
            data={
                "csrfmiddlewaretoken": csrf_of(page),
                "email": "leak@example.test",
                "organization_name": "Leak Org",
                "password1": password,
                "password2": password,
            },
            headers={"Referer": f"{url}/signup"},
            timeout=10,
        )
        assert signed_up.status_code == 200 and "Check your email" in signed_up.text
        worker = server.manage("run_worker", "--once")  # the outbox worker sends the link
        worker_output = worker.stdout + worker.stderr
        [mail] = [p.read_text() for p in (tmp_path / "mail").glob("*.log")]
        link = re.search(r"http://\S+/signup/confirm/\S+", mail).group(0)
        page = browser.get(link, timeout=10).text
        confirmed = browser.post(
            link,
            data={"csrfmiddlewaretoken": csrf_of(page)},
            headers={"Referer": link},
            timeout=10,
        )
        assert confirmed.status_code == 200 and "API clients" in confirmed.text
        assert password not in mail
        anonymous = requests.Session()
        page = anonymous.get(f"{url}/login", timeout=10).text
        for attempt in ("bad passphrase LEAKCANARY4", password):
            anonymous.post(
                f"{url}/login",
                data={
                    "csrfmiddlewaretoken": csrf_of(page),
                    "username": "leak@example.test",
                    "password": attempt,
                },
                headers={"Referer": f"{url}/login"},
                timeout=10,
            )
        seen += [password, "LEAKCANARY4"]
    finally:
        server.stop()
        database.drop()
    logs = server.log_text() + worker_output
    assert '"level":"DEBUG"' in logs or "[DEBUG]" in logs, "the server did not log at DEBUG"
    assert "/oauth/token" in logs and "/api/v1/organizations" in logs
    for value in seen:
        assert value not in logs, f"leaked into the logs: {value[:12]}…"
