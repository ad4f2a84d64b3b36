"""Signing keys: the private half encrypted at rest, the public half as a JWK."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SigningKey(models.Model):
    """A token signing key. The newest key without ``retire_time`` is current.

    A retired key stays published in the JWKS until ``unpublish_time``, when no
    token it signed can still be valid.
    """

    kid = models.CharField(primary_key=True, max_length=64, editable=False)
    algorithm = models.CharField(max_length=8, editable=False)
    private_key_encrypted = models.TextField(editable=False)
    public_jwk = models.JSONField(editable=False)
    create_time = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    retire_time = models.DateTimeField(null=True, blank=True, editable=False)
    unpublish_time = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-create_time"]
        indexes = [models.Index(fields=["retire_time", "-create_time"])]

    def __str__(self) -> str:
        return f"{self.kid} ({self.algorithm})"

    @property
    def is_current(self) -> bool:
        return self.retire_time is None


def new_client_key_id() -> str:
    # Imported here, not at module level: clients.models must stay free of oauth imports, and
    # this keeps the one id scheme (a prefixed random number) in one place.
    from clients.models import random_id

    return random_id("ckey_")


class ClientKey(models.Model):
    """A public key a client registered for ``private_key_jwt`` (RFC 7523). Never a private one.

    ``jwk`` holds only the public members (``kty``, ``kid``, ``use``, ``alg`` and ``n``/``e`` or
    ``crv``/``x``/``y``); the assertion must be signed with ``alg``, so one key serves one
    algorithm (RFC 8725 §3.1).
    """

    id = models.CharField(
        primary_key=True, max_length=32, default=new_client_key_id, editable=False
    )
    client = models.ForeignKey(
        "clients.ApiClient", on_delete=models.CASCADE, related_name="keys", editable=False
    )
    kid = models.CharField(max_length=128, editable=False)
    kty = models.CharField(max_length=8, editable=False)
    alg = models.CharField(max_length=8, editable=False)
    jwk = models.JSONField(editable=False)
    create_time = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["create_time", "id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "kid"], name="oauth_clientkey_unique_kid")
        ]
        verbose_name = "client public key"

    def __str__(self) -> str:
        return f"{self.kid} ({self.alg}, {self.id})"


class RevokedToken(models.Model):
    """An access token revoked before its expiry (RFC 7009), remembered until then."""

    jti = models.CharField(primary_key=True, max_length=64, editable=False)
    client_id = models.CharField(max_length=32, editable=False)
    expire_time = models.DateTimeField(db_index=True, editable=False)
    revoke_time = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.jti} ({self.client_id})"


class UsedAssertion(models.Model):
    """A client assertion's ``jti``, kept until the assertion expires so it cannot be replayed."""

    jti = models.CharField(max_length=255, editable=False)
    client_id = models.CharField(max_length=32, editable=False)
    expire_time = models.DateTimeField(db_index=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client_id", "jti"], name="oauth_usedassertion_unique_jti"
            )
        ]

    def __str__(self) -> str:
        return f"{self.jti} ({self.client_id})"
