"""GitHub's secret scanning partner endpoint, POST /oauth/secret-scanning/github: alerts signed
with a local ECDSA P-256 key whose public half a real local HTTP server publishes in GitHub's
format (reached with the test-only OUTBOUND_ALLOW_INSECURE)."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core import mail

from clients.models import AuditEvent, ClientSecret, OutboxTask, make_plain_secret
from clients.services import organization_update
from oauth import secret_scanning
from tests.conftest import SYSTEM, request_token, run_worker
from tests.github_scanning import GitHub
from tests.oidc_issuer import local_server

URL = "/oauth/secret-scanning/github"
pytestmark = pytest.mark.django_db


@pytest.fixture
def github(settings):
    with local_server() as server:
        settings.OUTBOUND_ALLOW_INSECURE = True
        github = GitHub(server)
        settings.GITHUB_SECRET_SCANNING_KEYS_URL = github.keys_url
        secret_scanning.forget_keys()
        yield github
        secret_scanning.forget_keys()


def send(client, github: GitHub, body: bytes, **headers):
    signed = headers or github.sign(body)
    return client.generic("POST", URL, body, content_type="application/json", **signed)


def state() -> tuple:
    """Everything a refused alert must leave as it was."""
    return (
        sorted(ClientSecret.objects.values_list("id", "status", "leak_url", "leak_time")),
        AuditEvent.objects.count(),
        OutboxTask.objects.count(),
    )


def test_a_true_positive_is_revoked_within_the_request_and_mailed_once(
    client, github, guide_client, owner, admin, viewer
):
    assert request_token(client, guide_client).status_code == 200
    body = github.alert(guide_client.secret)
    response = send(client, github, body)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == [
        {
            "token_hash": hashlib.sha256(guide_client.secret.encode()).hexdigest(),
            "token_type": "m2m_client_secret",
            "label": "true_positive",
        }
    ]
    secret = ClientSecret.objects.get(client=guide_client.client)
    assert secret.status == "LEAKED"
    assert secret.leak_url == "https://github.com/octo/app/blob/abc/config.py"
    assert secret.leak_source == "content" and secret.leak_time is not None
    # Refused at once, although this process verified (and cached) the secret before.
    refused = request_token(client, guide_client)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    event = AuditEvent.objects.get(action="secret.leak")
    assert event.target_id == secret.id and event.actor_display == "GitHub secret scanning"
    assert event.details["url"] == secret.leak_url and event.details["source"] == "content"
    assert event.details["on_leak"] == "revoke" and event.details["revoked"] is True
    # The same alert again (GitHub retries): the same answer, nothing more.
    again = send(client, github, body)
    assert again.status_code == 200 and again.json() == response.json()
    assert AuditEvent.objects.filter(action="secret.leak").count() == 1
    run_worker()
    run_worker()
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sorted(sent.to) == ["admin@acme.test", "owner@acme.test"]  # not the viewer
    assert guide_client.client.name in sent.subject
    for text in (sent.body, sent.alternatives[0][0]):
        assert guide_client.client.name in text and secret.secret_suffix in text
        assert secret.leak_url in text and "revoked" in text
        assert "generate a new secret" in text
    assert guide_client.secret not in sent.body + sent.alternatives[0][0]


def test_a_leaked_secret_cannot_be_reactivated(client, github, guide_client):
    from django.core.exceptions import ValidationError

    from clients.services import secret_set_status

    send(client, github, github.alert(guide_client.secret))
    secret = ClientSecret.objects.get(client=guide_client.client)
    with pytest.raises(ValidationError):
        secret_set_status(actor=SYSTEM, secret=secret, status="ACTIVE")
    with pytest.raises(ValidationError):
        secret_set_status(actor=SYSTEM, secret=secret, status="LEAKED")
    assert ClientSecret.objects.get(pk=secret.pk).status == "LEAKED"


def test_notify_only_mails_and_keeps_the_secret_working(client, github, guide_client, owner):
    organization_update(
        actor=SYSTEM, organization=guide_client.client.organization, on_leak="notify"
    )
    response = send(client, github, github.alert(guide_client.secret))
    assert response.json()[0]["label"] == "true_positive"
    secret = ClientSecret.objects.get(client=guide_client.client)
    assert secret.status == "ACTIVE" and secret.leak_time is not None
    assert request_token(client, guide_client).status_code == 200
    event = AuditEvent.objects.get(action="secret.leak")
    assert event.details["on_leak"] == "notify" and event.details["revoked"] is False
    send(client, github, github.alert(guide_client.secret))
    run_worker()
    assert len(mail.outbox) == 1 and "STILL WORKS" in mail.outbox[0].body
    # Switched to revoke later, a new report of the same secret revokes it (no second mail).
    organization_update(
        actor=SYSTEM, organization=guide_client.client.organization, on_leak="revoke"
    )
    send(client, github, github.alert(guide_client.secret))
    assert ClientSecret.objects.get(pk=secret.pk).status == "LEAKED"
    run_worker()
    assert len(mail.outbox) == 1


def test_false_positives_change_nothing(client, github, guide_client):
    never_issued = make_plain_secret()  # well formed, right checksum, never stored
    body = guide_client.secret
    wrong_checksum = body[:-1] + ("A" if body[-1] != "A" else "B")
    before = state()
    response = send(client, github, github.alert(never_issued, wrong_checksum, "m2ms_short"))
    assert response.status_code == 200
    assert [item["label"] for item in response.json()] == ["false_positive"] * 3
    assert state() == before
    assert request_token(client, guide_client).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": "x"},
        {"HTTP_GITHUB_PUBLIC_KEY_SIGNATURE": "MEUCIQ=="},
    ],
    ids=["unsigned", "no-signature", "no-key-id"],
)
def test_an_unsigned_alert_is_refused(client, github, guide_client, headers):
    before = state()
    body = github.alert(guide_client.secret)
    response = client.generic("POST", URL, body, content_type="application/json", **headers)
    assert response.status_code == 401
    assert state() == before


def test_a_wrong_signature_is_refused(client, github, guide_client):
    before = state()
    body = github.alert(guide_client.secret)
    # Another body's valid signature (a replay onto a forged body), a forged one, junk.
    other = github.sign(github.alert("m2ms_other"))
    assert send(client, github, body, **other).status_code == 401
    forged = github.sign(body)
    forged["HTTP_GITHUB_PUBLIC_KEY_SIGNATURE"] = "MEUCIQ" + "A" * 90 + "=="
    assert send(client, github, body, **forged).status_code == 401
    junk = {**github.sign(body), "HTTP_GITHUB_PUBLIC_KEY_SIGNATURE": "not base64!"}
    assert send(client, github, body, **junk).status_code == 401
    assert state() == before


def test_an_unknown_key_is_refused_and_refetched_at_most_once_a_window(
    client, github, guide_client, settings
):
    settings.GITHUB_SECRET_SCANNING_REFETCH_SECONDS = 3600
    body = github.alert(guide_client.secret)
    assert send(client, github, github.alert("m2ms_warmup")).status_code == 200
    fetches = github.keys_fetches()
    before = state()
    stranger = GitHub(github.server)  # a key GitHub never published: ours is replaced
    github.publish()  # publish ours again (the stranger's key is not published)
    signed = stranger.sign(body)
    for _ in range(5):
        assert send(client, github, body, **signed).status_code == 401
    assert github.keys_fetches() <= fetches + 1  # no amplification
    assert state() == before


def test_a_rotated_key_is_fetched_when_an_alert_names_it(client, github, guide_client):
    assert send(client, github, github.alert("m2ms_warmup")).status_code == 200
    fetches = github.keys_fetches()
    github.key_id = github.add_key()
    github.publish()
    response = send(client, github, github.alert(guide_client.secret))
    assert response.status_code == 200 and response.json()[0]["label"] == "true_positive"
    assert github.keys_fetches() == fetches + 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b"[]",
        b'["m2ms_x"]',
        b'[{"type": "t", "url": "u"}]',
        b'[{"token": 5, "type": "t"}]',
    ],
    ids=["not-json", "object", "empty", "not-objects", "no-token", "token-not-string"],
)
def test_a_malformed_signed_body_is_refused(client, github, guide_client, body):
    before = state()
    response = send(client, github, body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert state() == before


def test_keys_unreachable_refuse_the_alert(client, settings, guide_client):
    with local_server() as server:
        settings.OUTBOUND_ALLOW_INSECURE = True
        github = GitHub(server)
        settings.GITHUB_SECRET_SCANNING_KEYS_URL = server.url + "/missing"
        secret_scanning.forget_keys()
        assert send(client, github, github.alert(guide_client.secret)).status_code == 401
    secret_scanning.forget_keys()


def test_the_keys_url_must_pass_the_safe_fetcher(client, settings, guide_client):
    # Without the test-only setting, http:// and loopback are refused: no key, no alert.
    with local_server() as server:
        settings.OUTBOUND_ALLOW_INSECURE = False
        github = GitHub(server)
        settings.GITHUB_SECRET_SCANNING_KEYS_URL = github.keys_url
        secret_scanning.forget_keys()
        assert send(client, github, github.alert(guide_client.secret)).status_code == 401
        assert github.keys_fetches() == 0
    secret_scanning.forget_keys()
    assert ClientSecret.objects.get(client=guide_client.client).status == "ACTIVE"


def test_only_post(client, github):
    assert client.get(URL).status_code == 405


def test_an_oversized_alert_is_refused(client, github):
    body = json.dumps([{"token": "x" * 100, "type": "t"}] * 20000).encode()
    assert send(client, github, body).status_code == 413


def test_unreachable_keys_are_asked_for_at_most_once_a_window(client, settings, guide_client):
    settings.GITHUB_SECRET_SCANNING_REFETCH_SECONDS = 3600
    with local_server() as server:
        settings.OUTBOUND_ALLOW_INSECURE = True
        github = GitHub(server)
        del server.routes["/meta/public_keys/secret_scanning"]  # GitHub's keys answer 404
        settings.GITHUB_SECRET_SCANNING_KEYS_URL = github.keys_url
        secret_scanning.forget_keys()
        for _ in range(5):
            assert send(client, github, github.alert(guide_client.secret)).status_code == 401
        assert github.keys_fetches() == 1
    secret_scanning.forget_keys()


def test_a_published_key_that_is_not_p256_is_refused(client, github, guide_client):
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    github.keys["p384"] = key  # published and used, but not the curve GitHub signs with
    github.key_id = "p384"
    github.publish()
    secret_scanning.forget_keys()
    body = github.alert(guide_client.secret)
    assert send(client, github, body).status_code == 401
    assert ClientSecret.objects.get(client=guide_client.client).status == "ACTIVE"
