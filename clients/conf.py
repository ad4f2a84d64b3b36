"""The domain's knobs and their defaults, read from ``settings.OAUTH``: what a client may hold
and how its secrets are made. ``oauth.settings`` declares the authorization server's own."""

from __future__ import annotations

from portal.lib.conf import REQUIRED, AppSettings

client_settings = AppSettings(
    "OAUTH",
    {
        # The ``iss`` of every token and the base of every published URL (portal/settings.py
        # sets it from OAUTH_ISSUER).
        "ISSUER": REQUIRED,
        # Prefix of new plain secrets, so that people and scanners can tell what they are.
        # Checked at start-up (clients.checks): letters, digits and "_", 4 to 32 characters,
        # ending with "_".
        "SECRET_PREFIX": "m2ms_",
        # The longest any organization's new secrets may live, in days; None: no cap.
        "SECRET_MAX_LIFETIME_DAYS_CAP": None,
        # Days before expire_time that the owners and admins are reminded (send_reminders).
        "SECRET_REMINDER_DAYS": (14, 3),
        # A secret unused this many days is shown as unused, with an offer to revoke it.
        "UNUSED_SECRET_DAYS": 90,
        # A client's token lifetime, in seconds: its default, and the bounds it may be set to.
        "TOKEN_EXPIRY_DEFAULT": 3600,
        "TOKEN_EXPIRY_MIN": 60,
        "TOKEN_EXPIRY_MAX": 86400,
        "MAX_SECRETS_PER_CLIENT": 5,
        # Registered public keys per client (private_key_jwt, RFC 7523).
        "MAX_KEYS_PER_CLIENT": 10,
        # The scope and audience a management client's tokens carry for /api/v1.
        "MANAGEMENT_SCOPE": "management",
        "MANAGEMENT_AUDIENCE": lambda conf: f"{conf.ISSUER}/api/v1",
        # argon2id parameters for client secrets (OWASP: 19 MiB, 2 passes, 1 lane).
        "ARGON2_TIME_COST": 2,
        "ARGON2_MEMORY_COST": 19456,
        "ARGON2_PARALLELISM": 1,
        # The token quota of a new organization (the provider's caps; None: no quota), and its
        # mode: "enforce" refuses past it, "observe" counts and warns only.
        "TOKEN_QUOTA_DEFAULT_PER_HOUR": None,
        "TOKEN_QUOTA_DEFAULT_PER_DAY": None,
        "TOKEN_QUOTA_DEFAULT_MODE": "enforce",
    },
)
