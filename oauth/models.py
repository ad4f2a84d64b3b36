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
