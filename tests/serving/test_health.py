"""GET /healthz and GET /readyz."""

from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from oauth import keys
from portal.serving.static_files import require_static_manifest
from tests.serving.helpers import captured_json, closed_port, database_down

REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def test_healthz_answers_without_touching_the_database(client):
    # No db fixture: any query here would make pytest-django fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {"status": "ok"}


def test_healthz_refuses_post(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.django_db
def test_readyz_is_ready_with_a_database_and_a_signing_key(client):
    keys.ensure_signing_key()
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "status": "ready",
        "checks": {
            "database": "ok",
            "signing_key": "ok",
            "redis": "not_configured",
            "static_files": "ok",
        },
    }


@pytest.mark.django_db
def test_readyz_is_not_ready_without_a_signing_key(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["signing_key"] == "error"
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_is_not_ready_when_the_key_cannot_be_decrypted(client):
    # Created but never loaded in this process, so readyz must decrypt it itself.
    keys.create_signing_key()
    with override_settings(
        OAUTH={**settings.OAUTH, "KEY_ENCRYPTION_KEYS": ["a-different-secret-entirely"]}
    ):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["signing_key"] == "error"
    # Nothing about the key or the secret is disclosed.
    assert b"OAUTH_KEY_ENCRYPTION_KEYS" not in response.content


@pytest.mark.django_db
def test_readyz_answers_503_when_the_database_is_down(client, tmp_path):
    keys.ensure_signing_key()
    with database_down(tmp_path), captured_json("portal.serving.health") as logs:
        response = client.get("/readyz", HTTP_X_REQUEST_ID="probe-1")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "not_ready",
        "checks": {
            "database": "error",
            "signing_key": "skipped",
            "redis": "not_configured",
            "static_files": "ok",
        },
    }
    # The operator learns why from the log, with the request id; the probe does not.
    (line,) = logs.parsed()
    assert line["check"] == "database" and line["request_id"] == "probe-1"
    assert "OperationalError" in line["message"]
    # And the server recovers as soon as the database is back.
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_healthz_stays_up_when_the_database_is_down(client, tmp_path):
    with database_down(tmp_path):
        assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_readyz_checks_redis_when_configured(client):
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    keys.ensure_signing_key()
    with override_settings(REDIS_URL=REDIS_URL):
        response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["redis"] == "ok"


@pytest.mark.django_db
def test_readyz_answers_503_when_redis_is_down(client):
    keys.ensure_signing_key()
    url = f"redis://:hunter2-redis-password@127.0.0.1:{closed_port()}/0"
    with override_settings(REDIS_URL=url):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "signing_key": "ok",
        "redis": "error",
        "static_files": "ok",
    }
    assert b"hunter2" not in response.content
    assert b"127.0.0.1" not in response.content


MANIFEST_STORAGE = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


@pytest.mark.django_db
def test_readyz_is_not_ready_without_the_static_files_manifest(client, tmp_path):
    keys.ensure_signing_key()
    with (
        override_settings(STORAGES=MANIFEST_STORAGE, STATIC_ROOT=tmp_path),
        captured_json("portal.serving.health") as logs,
    ):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["static_files"] == "error"
    assert response.json()["checks"]["database"] == "ok"
    assert str(tmp_path).encode() not in response.content  # the path goes to the log only
    (line,) = logs.parsed()
    assert line["check"] == "static_files"


@pytest.mark.django_db
@pytest.mark.parametrize("content", ["{not json", '{"version": "1.1", "paths": {}}', "[]"])
def test_readyz_is_not_ready_with_an_unreadable_or_empty_manifest(client, tmp_path, content):
    keys.ensure_signing_key()
    (tmp_path / "staticfiles.json").write_text(content)
    with override_settings(STORAGES=MANIFEST_STORAGE, STATIC_ROOT=tmp_path):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["static_files"] == "error"


@pytest.mark.django_db
def test_readyz_is_ready_once_the_static_files_are_collected(client, tmp_path):
    keys.ensure_signing_key()
    manifest = {"version": "1.1", "paths": {"portal.css": "portal.0123abcd.css"}, "hash": ""}
    (tmp_path / "staticfiles.json").write_text(json.dumps(manifest))
    with override_settings(STORAGES=MANIFEST_STORAGE, STATIC_ROOT=tmp_path):
        response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["static_files"] == "ok"


def test_start_up_stops_without_the_manifest_and_says_to_run_collectstatic(tmp_path):
    with (
        override_settings(STORAGES=MANIFEST_STORAGE, STATIC_ROOT=tmp_path),
        pytest.raises(ImproperlyConfigured) as refused,
    ):
        require_static_manifest()
    assert "manage.py collectstatic" in str(refused.value)
    assert str(tmp_path / "staticfiles.json") in str(refused.value)


def test_start_up_needs_no_manifest_when_static_files_are_served_from_the_finders():
    require_static_manifest()  # the tests' StaticFilesStorage, as with DEBUG on
