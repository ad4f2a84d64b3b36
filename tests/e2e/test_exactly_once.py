"""Exactly-once creation against a real server: concurrent submissions of one form.

A double click, a reload and several tabs all send the same form with the same one-time token.
Eight threads post it at once (a barrier releases them together) to a real server process; the
service's claim of the token lets exactly one of them create, and the others are led to what it
made, without its secret.
"""

from __future__ import annotations

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

PASSWORD = "a long and unusual passphrase 42"
SENDERS = 8


def csrf_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def nonce_of(html: str) -> str:
    return re.search(r'name="nonce" value="([^"]+)"', html).group(1)


def signed_up(server: LiveServer) -> tuple[requests.Session, str]:
    """A new account with its organization, logged in: the session and the organization's id."""
    session = requests.Session()
    email = f"once-{uuid.uuid4().hex[:8]}@example.test"
    page = session.get(f"{server.url}/signup", timeout=10).text
    sent = session.post(
        f"{server.url}/signup",
        data={
            "csrfmiddlewaretoken": csrf_of(page),
            "email": email,
            "organization_name": "Once Corp",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
        timeout=30,
    )
    assert sent.status_code == 200, sent.text
    mail = next(m for m in reversed(server.mails()) if f"To: {email}" in m)
    link = re.search(r"http://\S+/signup/confirm/\S+", mail).group(0)
    confirm = session.get(link, timeout=10).text
    opened = session.post(link, data={"csrfmiddlewaretoken": csrf_of(confirm)}, timeout=30)
    org_id = re.search(r"/orgs/([^/]+)/clients", opened.url).group(1)
    return session, org_id


def post_together(session: requests.Session, url: str, data: list[tuple[str, str]]) -> list:
    """``SENDERS`` threads, each with the session's cookies, post ``data`` at the same moment;
    a redirect is then followed (its page as ``followed``), with that thread's cookies (the
    message rides on them)."""
    barrier = threading.Barrier(SENDERS)

    def send(_: int) -> requests.Response:
        own = requests.Session()
        own.cookies.update(session.cookies)
        barrier.wait()
        answer = own.post(url, data=data, allow_redirects=False, timeout=60)
        if answer.status_code == 302:
            location = answer.headers["Location"]
            answer.followed = own.get(url.split("/orgs/")[0] + location, timeout=10).text
        return answer

    with ThreadPoolExecutor(SENDERS) as pool:
        return list(pool.map(send, range(SENDERS)))


def client_ids(session: requests.Session, server: LiveServer, org_id: str) -> set[str]:
    page = session.get(f"{server.url}/orgs/{org_id}/clients", timeout=10).text
    return set(re.findall(rf"/orgs/{org_id}/clients/(m2morg_\d+)", page))


def test_eight_concurrent_submissions_of_one_form_register_one_client(live_server_process):
    server = live_server_process
    session, org_id = signed_up(server)
    url = f"{server.url}/orgs/{org_id}/clients/new"
    form = session.get(url, timeout=10).text
    data = [
        ("csrfmiddlewaretoken", csrf_of(form)),
        ("nonce", nonce_of(form)),
        ("name", "Twice clicked"),
        ("description", ""),
        ("expiry", "3600"),
        ("audience", "deployment-api.acmecorp.com"),
        ("scopes", "read:deployments"),
    ]
    answers = post_together(session, url, data)

    assert sorted(a.status_code for a in answers) == [200] + [302] * (SENDERS - 1)
    ids = client_ids(session, server, org_id)
    assert len(ids) == 1
    (created,) = ids
    # The winner shows the secret; every loser is led to that client's page, without it.
    winner = next(a for a in answers if a.status_code == 200)
    assert 'id="client-secret"' in winner.text
    for loser in (a for a in answers if a.status_code == 302):
        assert loser.headers["Location"] == f"/orgs/{org_id}/clients/{created}"
        assert "This form was already submitted" in loser.followed
        assert 'id="client-secret"' not in loser.followed


def test_eight_concurrent_secret_generations_add_one_secret(live_server_process):
    server = live_server_process
    session, org_id = signed_up(server)
    new = f"{server.url}/orgs/{org_id}/clients/new"
    form = session.get(new, timeout=10).text
    session.post(
        new,
        data=[
            ("csrfmiddlewaretoken", csrf_of(form)),
            ("name", "Rotated"),
            ("expiry", "3600"),
            ("audience", "deployment-api.acmecorp.com"),
            ("scopes", "read:deployments"),
        ],
        timeout=30,
    )
    (client_id,) = client_ids(session, server, org_id)
    detail_url = f"{server.url}/orgs/{org_id}/clients/{client_id}"
    detail = session.get(detail_url, timeout=10).text
    data = [("csrfmiddlewaretoken", csrf_of(detail)), ("nonce", nonce_of(detail))]
    answers = post_together(session, f"{detail_url}/secrets/new", data)

    assert sorted(a.status_code for a in answers) == [200] + [302] * (SENDERS - 1)
    assert all("generate a new secret" in a.followed for a in answers if a.status_code == 302)
    # The first secret and exactly one more: each secret row has its own revoke link.
    after = session.get(detail_url, timeout=10).text
    assert len(set(re.findall(r"/secrets/(sks_\d+)/revoke", after))) == 2
