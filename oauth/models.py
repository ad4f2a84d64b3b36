"""What the authorization server keeps of its own: signing keys, revoked tokens, used assertions,
and the counters of its rate limits and token statistics."""

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


class TokenUsage(models.Model):
    """Per client and hour: tokens issued (``reason`` "") and requests refused by reason
    (``invalid_client``, ``quota_exceeded``…), summed over every worker. Workers count in memory
    and add here at most once a minute and on exit (``oauth.stats``). Ids, not foreign keys:
    the counts outlive a deleted client until ``purge_expired`` removes old hours."""

    hour = models.DateTimeField()
    client_id = models.CharField(max_length=64)
    organization_id = models.CharField(max_length=32, blank=True, default="")
    reason = models.CharField(max_length=40, blank=True, default="")
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client_id", "hour", "reason"], name="token_usage_one_row"
            )
        ]
        # The usage pages read by organization; the dashboard and purge_expired by hour.
        indexes = [models.Index(fields=["organization_id", "hour"]), models.Index(fields=["hour"])]

    def __str__(self) -> str:
        return (
            f"{self.client_id} {self.hour:%Y-%m-%d %H}:00 {self.reason or 'issued'}: {self.count}"
        )


class TokenStat(models.Model):
    """Tokens issued and refused per hour, summed over every worker.

    Workers count in memory and add their counts here at most once a minute
    (``oauth.stats``), so the token endpoint never writes a row per token.
    """

    hour = models.DateTimeField(unique=True)
    issued = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "clients_tokenstat"  # its table from before it moved here
        ordering = ["-hour"]
        verbose_name = "token statistic"

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} issued {self.issued}, failed {self.failed}"


class RateLimitCounter(models.Model):
    """One window's count of ``oauth.ratelimit`` when no Redis is configured (the limiter reads
    this window's row and the previous one's: two-window counting).

    ``key`` names the scope, the hashed identifier and the window; rows whose window is over
    (``expires``, epoch seconds) are deleted now and then by the limiter itself.
    """

    key = models.CharField(max_length=128, unique=True)
    window_start = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)
    expires = models.BigIntegerField(db_index=True)

    class Meta:
        db_table = "clients_ratelimitcounter"  # its table from before it moved here
        verbose_name = "rate-limit counter"

    def __str__(self) -> str:
        return f"{self.key}={self.count}"
