"""Client public keys (private_key_jwt, RFC 7523)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from clients.conf import client_settings
from clients.jwk import JWKError, parse_public_jwk
from clients.models import ApiClient, ClientKey
from clients.services._common import delete_once
from clients.services.audit import Actor, audit_key


@transaction.atomic
def client_key_add(*, actor: Actor, client: ApiClient, jwk: Any) -> ClientKey:
    """Register a public key the client will sign its assertions with.

    A JWK with private members, an unsupported key, or a kid the client already uses is a
    ``ValidationError`` (field ``jwk.<member>``), and nothing is stored.
    """
    try:
        parsed = parse_public_jwk(jwk)
    except JWKError as exc:
        field = "jwk" if exc.field == "jwk" else f"jwk.{exc.field}"
        raise ValidationError({field: [exc.message]}) from exc
    # Lock the client row so that two concurrent adds cannot both pass the checks.
    if ApiClient.objects.select_for_update().filter(pk=client.pk).first() is None:
        raise ApiClient.DoesNotExist("client was deleted")
    limit = client_settings.MAX_KEYS_PER_CLIENT
    if ClientKey.objects.filter(client_id=client.pk).count() >= limit:
        raise ValidationError(
            f"a client holds at most {limit} keys; delete one first", code="limit"
        )
    if ClientKey.objects.filter(client_id=client.pk, kid=parsed.kid).exists():
        raise ValidationError(
            {"jwk.kid": [f"this client already has a key with kid {parsed.kid!r}"]}
        )
    key = ClientKey.objects.create(
        client=client, kid=parsed.kid, kty=parsed.kty, alg=parsed.alg, jwk=parsed.jwk
    )
    audit_key(actor, "client_key.create", key, details={"kty": key.kty, "alg": key.alg})
    return key


@transaction.atomic
def client_key_delete(*, actor: Actor, key: ClientKey) -> None:
    """Remove a public key: assertions signed with it fail from the next request on."""
    if delete_once(key):
        audit_key(actor, "client_key.delete", key)
