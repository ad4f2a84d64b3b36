"""Signing-key rotation with both algorithms, and the cron-safe rotate_signing_key command."""

from __future__ import annotations

import io
from datetime import timedelta

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone

from oauth import keys
from oauth.models import SigningKey
from oauth.settings import oauth_settings
from tests.conftest import request_token
from tests.oauth.token.test_endpoint import decode

pytestmark = pytest.mark.django_db


def token_of(client, creds) -> str:
    return request_token(client, creds).json()["access_token"]


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_signing_key", *args, stdout=out)
    return out.getvalue()


def test_rotation_across_both_algorithms_keeps_older_tokens_verifiable(client, guide_client):
    tokens = [token_of(client, guide_client)]
    for algorithm in ("ES256", "RS256", "ES256"):
        rotate("--algorithm", algorithm)
        tokens.append(token_of(client, guide_client))
    assert [jwt.get_unverified_header(t)["alg"] for t in tokens] == [
        "RS256",
        "ES256",
        "RS256",
        "ES256",
    ]
    assert len({jwt.get_unverified_header(t)["kid"] for t in tokens}) == 4
    # Every token still verifies with PyJWT through the published JWKS, the way the guide does.
    for token in tokens:
        assert decode(token, client)["client_id"] == guide_client.client_id
    published = {k["kid"]: k for k in client.get("/.well-known/jwks.json").json()["keys"]}
    for token in tokens:
        jwk = published[jwt.get_unverified_header(token)["kid"]]
        if jwk["alg"] == "ES256":
            assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256") and "n" not in jwk
        else:
            assert jwk["kty"] == "RSA" and "crv" not in jwk
        assert "d" not in jwk


def test_es256_tokens_verify_with_pyjwks_client_shape(client, guide_client, settings):
    rotate("--algorithm", "ES256")
    token = token_of(client, guide_client)
    jwks = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        audience="deployment-api.acmecorp.com",
        issuer=settings.OAUTH["ISSUER"],
    )
    assert claims["sub"] == guide_client.client_id


def test_if_older_than_rotates_only_an_old_key(client, guide_client):
    keys.ensure_signing_key()
    assert "nothing rotated" in rotate("--if-older-than", "30")
    assert SigningKey.objects.count() == 1
    SigningKey.objects.update(create_time=timezone.now() - timedelta(days=31))
    assert "new current signing key" in rotate("--if-older-than", "30")
    assert SigningKey.objects.count() == 2
    # The new key is young: a second cron run does nothing.
    assert "nothing rotated" in rotate("--if-older-than", "30")
    assert SigningKey.objects.count() == 2


def test_a_retired_key_stays_published_until_its_tokens_can_have_expired(
    client, guide_client, settings
):
    old_token = token_of(client, guide_client)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    rotate()
    old = SigningKey.objects.get(kid=old_kid)
    # The longest token lifetime plus a JWKS cache period must pass before it goes.
    assert old.unpublish_time - old.retire_time >= timedelta(
        seconds=oauth_settings.TOKEN_EXPIRY_MAX + oauth_settings.JWKS_MAX_AGE
    )

    def published() -> set[str]:
        return {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}

    assert old_kid in published()
    # A cron run before the deadline prunes nothing.
    SigningKey.objects.filter(kid=old_kid).update(
        unpublish_time=timezone.now() + timedelta(seconds=30)
    )
    SigningKey.objects.exclude(kid=old_kid).update(create_time=timezone.now() - timedelta(days=90))
    rotate("--if-older-than", "30")
    assert SigningKey.objects.filter(kid=old_kid).exists() and old_kid in published()
    # After it, the key is unpublished and pruned.
    SigningKey.objects.filter(kid=old_kid).update(unpublish_time=timezone.now())
    assert old_kid not in published()
    rotate()
    assert not SigningKey.objects.filter(kid=old_kid).exists()


def test_rotation_is_audited(client):
    keys.ensure_signing_key()
    rotate("--algorithm", "ES256")
    from clients.models import AuditEvent

    event = AuditEvent.objects.get(action="signing_key.rotate")
    assert event.details["algorithm"] == "ES256"


def test_an_unknown_algorithm_is_refused():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        rotate("--algorithm", "HS256")
