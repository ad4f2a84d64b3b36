"""Organizations, API clients, their secrets, and the audit log.

Every state change goes through ``clients.services``; models only hold data and
their own invariants.
"""

from __future__ import annotations

import math
import re
import secrets
import unicodedata
import zlib
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from clients.conf import client_settings
from clients.trust import trust_policy_errors
from portal.lib.outbound import allow_insecure

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")

# Claim names a custom claim may never use, compared case-insensitively. A custom claim must not
# override a claim we set, and must not say something a resource server would trust as coming
# from the authorization server: who the token is for or from (``azp``, ``act``, ``may_act``),
# what it grants (``roles``, ``groups``, ``entitlements``, ``authorization_details``), what it is
# bound to (``cnf``), or how it was obtained (``acr``, ``amr``, ``auth_time``). Hence every name of
# the IANA "JSON Web Token Claims" registry (RFC 7519 §10.1, as of 2025), the JOSE header names a
# careless verifier might read from the payload, our own claims, and the authorization claims
# that common servers issue without registering them. ``_sd`` and ``...`` are registered too,
# but no custom claim key can take their form.
RESERVED_CLAIMS = frozenset(
    name.lower()
    for name in (
        # RFC 7519 §4.1, and our own claims (RFC 9068 §2.2, oid for the organization).
        *("iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "oid", "scope", "scopes"),
        # OpenID Connect Core 1.0 (standard and ID-token claims).
        *("name", "given_name", "family_name", "middle_name", "nickname", "preferred_username"),
        *("profile", "picture", "website", "email", "email_verified", "gender", "birthdate"),
        *("zoneinfo", "locale", "phone_number", "phone_number_verified", "address", "updated_at"),
        *("azp", "nonce", "auth_time", "at_hash", "c_hash", "acr", "amr", "sub_jwk", "sid"),
        *("_claim_names", "_claim_sources"),
        # RFC 7800 (proof of possession), RFC 8693 (token exchange), RFC 9449 (DPoP).
        *("cnf", "act", "may_act", "htm", "htu", "ath", "jkt"),
        # RFC 7643 / RFC 9068 §2.2.3.1: SCIM authorization attributes; RFC 9396; RFC 7662.
        *("roles", "groups", "entitlements", "authorization_details", "token_introspection"),
        # SIP, STIR/PASSporT and SET (RFC 8055, 8225, 8417, 8443, 8588, 8946, 9027, 9795 ...).
        *("sip_from_tag", "sip_date", "sip_callid", "sip_cseq_num", "sip_via_branch"),
        *("orig", "dest", "mky", "events", "toe", "txn", "rph", "vot", "vtm", "attest"),
        *("origid", "jcard", "at_use_nbr", "div", "opt", "sph", "rcd", "rcdi", "crn", "msgi"),
        *("sub_id",),
        # W3C verifiable credentials, ACE (RFC 9200/9203), RFC 9246 (CDNI), RFC 9334 (EAT).
        *("vc", "vp", "ace_profile", "cnonce", "exi", "cdniv", "cdnicrit", "cdniip", "cdniuc"),
        *("cdniets", "cdnistt", "cdnistd", "sig_val_claims", "eat_nonce", "ueid", "sueids"),
        *("oemid", "hwmodel", "hwversion", "oemboot", "dbgstat", "location", "eat_profile"),
        *("submods", "uptime", "bootcount", "bootseed", "dloas", "swname", "swversion"),
        *("manifests", "measurements", "measres", "intuse"),
        # OpenID Connect for Identity Assurance, RDAP, geolocation, SD-JWT, 3GPP, ATC.
        *("verified_claims", "place_of_birth", "nationalities", "birth_family_name"),
        *("birth_given_name", "birth_middle_name", "salutation", "title", "msisdn"),
        *("also_known_as", "atc", "rdap_allowed_purposes", "rdap_dnt_allowed", "geohash"),
        *("_sd", "_sd_alg", "sd_hash", "consumerPlmnId", "consumerSnpnId", "producerPlmnId"),
        *("producerSnpnId", "producerSnssaiList", "producerNsiList", "producerNfSetId"),
        *("producerNfServiceSetId", "sourceNfInstanceId", "analyticsIdList", "resOwnerId"),
        # JOSE header names (RFC 7515 §4.1, RFC 7516 §4.1): a verifier that merges header and
        # payload, or reads typ from the payload, must not be fooled.
        *("typ", "cty", "alg", "kid", "jku", "jwk", "x5u", "x5c", "x5t", "crit", "enc", "zip"),
        # Unregistered authorization claims that common servers and libraries trust.
        *("scp", "permissions", "tid", "rat", "s_hash", "active", "token_type", "username"),
    )
)

MAX_NAME_LENGTH = 128
MAX_DESCRIPTION_LENGTH = 512
MAX_SCOPES = 50
MAX_AUDIENCES = 20
MAX_CUSTOM_CLAIMS = 20
MAX_SCOPE_LENGTH = 128
MAX_AUDIENCE_LENGTH = 256
MAX_CLAIM_KEY_LENGTH = 64
MAX_CLAIM_VALUE_LENGTH = 256


# Control characters (C0, DEL, C1: line breaks, tabs, NUL, escapes) and the Unicode line and
# paragraph separators.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def validate_no_control_characters(value: str) -> None:
    """Refuse a name or description holding a control character.

    Names are shown on one line in pages, mails (a subject is a header: a line break in it would
    start another header), logs and CSV exports; a NUL is refused by PostgreSQL outright. One
    validator on the model fields, so the portal, the management API and the admin refuse them
    alike, with a field error.
    """
    bad = next((ch for ch in value if unicodedata.category(ch) in _CONTROL_CATEGORIES), None)
    if bad is not None:
        raise ValidationError(
            "must not contain control characters such as line breaks, tabs or NUL "
            f"(found U+{ord(bad):04X})",
            code="control_characters",
        )


def name_field() -> models.CharField:
    """A name shown to people (organization, client, API): one line, no control character."""
    return models.CharField(max_length=MAX_NAME_LENGTH, validators=[validate_no_control_characters])


def description_field() -> models.CharField:
    """A description shown to people: optional, one line, no control character."""
    return models.CharField(
        max_length=MAX_DESCRIPTION_LENGTH,
        blank=True,
        default="",
        validators=[validate_no_control_characters],
    )


def email_canonical(email: str) -> str:
    """An e-mail address as accounts and invitations store and match it: trimmed, lower case.

    People type their address with any capitalisation, and mail systems treat it as one
    mailbox; an account whose log-in depended on the capitalisation used at sign-up would lock
    its owner out. Every door (sign-up, log-in, invitations, password reset) passes addresses
    through here, so they agree.
    """
    return email.strip().lower()


def random_id(prefix: str) -> str:
    """A prefixed random 17-digit id (``org_59615193906282635``): not a sequence."""
    return f"{prefix}{secrets.randbelow(9 * 10**16) + 10**16}"


def new_organization_id() -> str:
    return random_id("org_")


def new_client_id() -> str:
    return random_id("m2morg_")


def new_management_client_id() -> str:
    return random_id("skc_")


def new_secret_id() -> str:
    return random_id("sks_")


class QuotaMode(models.TextChoices):
    """``enforce`` refuses past the quota; ``observe`` counts and warns but never refuses."""

    ENFORCE = "enforce", "enforce"
    OBSERVE = "observe", "observe"


def quota_fields() -> tuple[models.Field, models.Field, models.Field]:
    """Tokens per hour and per day (None: no quota) and the mode: on organizations (the caps
    the provider sets) and on clients (set by the organization, within those caps)."""
    return (
        models.PositiveIntegerField(
            null=True, blank=True, help_text="Tokens per clock hour (UTC); empty: no quota."
        ),
        models.PositiveIntegerField(
            null=True, blank=True, help_text="Tokens per UTC day; empty: no quota."
        ),
        models.CharField(
            max_length=8,
            choices=QuotaMode.choices,
            default=QuotaMode.ENFORCE,
            help_text="enforce: refuse past the quota (429); observe: count and warn only.",
        ),
    )


def check_quota_fields(instance: Any, errors: dict[str, list[str]]) -> None:
    for name in ("token_quota_per_hour", "token_quota_per_day"):
        value = getattr(instance, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            errors.setdefault("token_quota", []).append(f"{name[12:]} must be at least 1")
    if instance.token_quota_mode not in QuotaMode.values:
        errors.setdefault("token_quota", []).append("mode must be enforce or observe")


def quota_of(instance: Any) -> dict[str, Any] | None:
    """The ``token_quota`` of an organization or a client as the API shows it; None: no quota."""
    if instance.token_quota_per_hour is None and instance.token_quota_per_day is None:
        return None
    return {
        "per_hour": instance.token_quota_per_hour,
        "per_day": instance.token_quota_per_day,
        "mode": instance.token_quota_mode,
    }


def set_quota(instance: Any, quota: dict[str, Any] | None) -> None:
    """Set an organization's or a client's quota from ``{"per_hour", "per_day", "mode"}`` (a
    missing member: no quota for that window; mode defaults to enforce) or None (no quota)."""
    quota = quota or {}
    instance.token_quota_per_hour = quota.get("per_hour")
    instance.token_quota_per_day = quota.get("per_day")
    instance.token_quota_mode = quota.get("mode") or QuotaMode.ENFORCE


class Organization(models.Model):
    """A customer of the API provider; owns API clients and members."""

    id = models.CharField(primary_key=True, max_length=32, default=new_organization_id)
    display_name = name_field()
    external_id = models.CharField(max_length=128, unique=True, null=True, blank=True)
    create_time = models.DateTimeField(default=timezone.now, editable=False)
    update_time = models.DateTimeField(auto_now=True)
    # The API catalog this organization may grant from: every API unless restricted, then only
    # ``allowed_apis`` (possibly none). A flag, not "an empty list means all", so that staff can
    # restrict an organization to no API at all without the meaning flipping.
    restrict_apis = models.BooleanField(default=False)
    allowed_apis = models.ManyToManyField("ApiResource", blank=True, related_name="organizations")
    # The caps the provider sets on the organization's tokens (oauth.quotas).
    token_quota_per_hour, token_quota_per_day, token_quota_mode = quota_fields()

    class OnLeak(models.TextChoices):
        REVOKE = "revoke", "Revoke the secret at once"
        NOTIFY = "notify", "Notify only (the secret keeps working)"

    # What a leaked secret's report does (clients.services.leaks): revoke it at once, or only
    # tell the owners and admins (for customers who must rotate first).
    on_leak = models.CharField(max_length=8, choices=OnLeak.choices, default=OnLeak.REVOKE)
    # The longest a new secret may live, in days; null: no limit of its own (the provider's
    # cap, OAUTH["SECRET_MAX_LIFETIME_DAYS_CAP"], still applies).
    secret_max_lifetime_days = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["create_time", "id"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.id})"

    @property
    def effective_secret_lifetime_days(self) -> int | None:
        """The lifetime new secrets get: the organization's, within the provider's cap."""
        cap = client_settings.SECRET_MAX_LIFETIME_DAYS_CAP
        own = self.secret_max_lifetime_days
        if own is None:
            return cap
        return own if cap is None else min(own, cap)

    @property
    def token_quota(self) -> dict[str, Any] | None:
        return quota_of(self)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        check_quota_fields(self, errors)
        if errors:
            raise ValidationError(errors)


class ApiClient(models.Model):
    """An OAuth client. ``organization`` is None for a management client (``skc_``)."""

    id = models.CharField(primary_key=True, max_length=32, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="clients", null=True, blank=True
    )
    name = name_field()
    description = description_field()
    scopes = models.JSONField(default=list, blank=True)
    audience = models.JSONField(default=list, blank=True)
    custom_claims = models.JSONField(default=list, blank=True)
    expiry = models.PositiveIntegerField(default=3600)
    # RFC 9449 §5.2: every token of this client is DPoP-bound; a token request without a DPoP
    # proof is refused (oauth.dpop).
    dpop_bound_access_tokens = models.BooleanField(
        default=False,
        help_text="Refuse token requests without a DPoP proof (RFC 9449): every token is "
        "bound to the client's key.",
    )
    # The client's own quota, within its organization's caps (oauth.quotas).
    token_quota_per_hour, token_quota_per_day, token_quota_mode = quota_fields()
    create_time = models.DateTimeField(default=timezone.now, editable=False)
    update_time = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["create_time", "id"]
        indexes = [models.Index(fields=["organization", "create_time", "id"])]
        verbose_name = "API client"

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def client_id(self) -> str:
        return self.id

    @property
    def token_quota(self) -> dict[str, Any] | None:
        return quota_of(self)

    @property
    def is_management(self) -> bool:
        return self.organization_id is None

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if not self.name or not self.name.strip():
            errors.setdefault("name", []).append("name is required")
        low, high = client_settings.TOKEN_EXPIRY_MIN, client_settings.TOKEN_EXPIRY_MAX
        if not isinstance(self.expiry, int) or not low <= self.expiry <= high:
            errors.setdefault("expiry", []).append(f"expiry must be between {low} and {high}")
        for field, problems in validate_client_lists(
            self.scopes, self.audience, self.custom_claims, management=self.is_management
        ).items():
            errors.setdefault(field, []).extend(problems)
        check_quota_fields(self, errors)
        organization = self.organization if self.organization_id else None
        if organization is not None and not errors.get("token_quota"):
            for name, label in (("token_quota_per_hour", "hour"), ("token_quota_per_day", "day")):
                cap, value = getattr(organization, name), getattr(self, name)
                if cap is not None and value is not None and value > cap:
                    errors.setdefault("token_quota", []).append(
                        f"per_{label} must be at most the organization's cap of {cap}"
                    )
        if errors:
            raise ValidationError(errors)


class QuotaAlert(models.Model):
    """One 80 % or 100 % e-mail about one quota window: the unique row is claimed in the
    transaction that queues the e-mail, so each goes out once per window (oauth.quotas)."""

    subject_type = models.CharField(max_length=16)  # client | organization
    subject_id = models.CharField(max_length=32)
    window = models.CharField(max_length=8)  # hour | day
    window_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()  # 80 | 100
    create_time = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject_type", "subject_id", "window", "window_start", "threshold"],
                name="quota_alert_once_per_window",
            )
        ]

    def __str__(self) -> str:
        return f"{self.threshold}% of {self.subject_type} {self.subject_id} per {self.window}"


def is_management_scope(scope: str) -> bool:
    """Whether ``scope`` is the management API's scope, which only management clients hold."""
    return scope == client_settings.MANAGEMENT_SCOPE


def is_management_audience(audience: str) -> bool:
    """Whether ``audience`` names the management API (a trailing slash makes no difference)."""
    return audience.rstrip("/") == client_settings.MANAGEMENT_AUDIENCE.rstrip("/")


MANAGEMENT_SCOPE_RESERVED = (
    "{value!r} is the management API's scope; only a management client has it"
)
MANAGEMENT_AUDIENCE_RESERVED = (
    "{value!r} is the management API's audience; only a management client has it"
)


def validate_client_lists(
    scopes: object, audience: object, custom_claims: object, *, management: bool = False
) -> dict:
    """Field violations of the list fields, keyed like ``scopes[1]``.

    An organization's client (``management`` false) may never hold the management API's scope
    or audience: its token would then read and change every organization.
    """
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not isinstance(scopes, list):
        add("scopes", "scopes must be a list of strings")
    else:
        if len(scopes) > MAX_SCOPES:
            add("scopes", f"at most {MAX_SCOPES} scopes")
        seen: set[str] = set()
        for i, scope in enumerate(scopes):
            if not isinstance(scope, str) or not SCOPE_TOKEN_RE.match(scope):
                add(f"scopes[{i}]", "a scope is a non-empty RFC 6749 scope token (no spaces)")
            elif len(scope) > MAX_SCOPE_LENGTH:
                add(f"scopes[{i}]", f"a scope is at most {MAX_SCOPE_LENGTH} characters")
            elif scope in seen:
                add(f"scopes[{i}]", f"duplicate scope {scope!r}")
            elif not management and is_management_scope(scope):
                add(f"scopes[{i}]", MANAGEMENT_SCOPE_RESERVED.format(value=scope))
            else:
                seen.add(scope)
    if not isinstance(audience, list):
        add("audience", "audience must be a list of strings")
    else:
        if len(audience) > MAX_AUDIENCES:
            add("audience", f"at most {MAX_AUDIENCES} audiences")
        seen = set()
        for i, aud in enumerate(audience):
            if not isinstance(aud, str) or not aud.strip() or aud != aud.strip():
                add(f"audience[{i}]", "an audience is a non-empty string without outer spaces")
            elif len(aud) > MAX_AUDIENCE_LENGTH or any(ord(c) < 0x20 for c in aud):
                add(
                    f"audience[{i}]",
                    f"an audience is at most {MAX_AUDIENCE_LENGTH} printable characters",
                )
            elif aud in seen:
                add(f"audience[{i}]", f"duplicate audience {aud!r}")
            elif not management and is_management_audience(aud):
                add(f"audience[{i}]", MANAGEMENT_AUDIENCE_RESERVED.format(value=aud))
            else:
                seen.add(aud)
    if not isinstance(custom_claims, list):
        add("custom_claims", "custom_claims must be a list of {key, value} objects")
    else:
        if len(custom_claims) > MAX_CUSTOM_CLAIMS:
            add("custom_claims", f"at most {MAX_CUSTOM_CLAIMS} custom claims")
        keys: set[str] = set()
        for i, claim in enumerate(custom_claims):
            if not isinstance(claim, dict) or set(claim) != {"key", "value"}:
                add(f"custom_claims[{i}]", "a custom claim is an object with exactly key and value")
                continue
            key, value = claim["key"], claim["value"]
            if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.:-]*", key):
                add(
                    f"custom_claims[{i}].key",
                    "a claim key starts with a letter or _ and holds letters, digits, _ . : -",
                )
            elif len(key) > MAX_CLAIM_KEY_LENGTH:
                add(
                    f"custom_claims[{i}].key",
                    f"a claim key is at most {MAX_CLAIM_KEY_LENGTH} characters",
                )
            elif key.lower() in RESERVED_CLAIMS:
                add(f"custom_claims[{i}].key", f"{key!r} is a registered claim name")
            elif key in keys:
                add(f"custom_claims[{i}].key", f"duplicate claim key {key!r}")
            else:
                keys.add(key)
            if not isinstance(value, str):
                add(f"custom_claims[{i}].value", "a claim value is a string")
            elif len(value) > MAX_CLAIM_VALUE_LENGTH:
                add(
                    f"custom_claims[{i}].value",
                    f"a claim value is at most {MAX_CLAIM_VALUE_LENGTH} characters",
                )
    return errors


class ManagementClient(ApiClient):
    """Proxy for environment-level clients of the management API (``skc_…``)."""

    class Meta:
        proxy = True
        verbose_name = "management client"


class ClientSecret(models.Model):
    """A client secret. Only its argon2id hash is stored; the plain value is shown once."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        INACTIVE = "INACTIVE"
        # Reported leaked and revoked (clients.services.leaks): refused like INACTIVE, and no
        # face can make it ACTIVE again.
        LEAKED = "LEAKED"

    id = models.CharField(primary_key=True, max_length=32, default=new_secret_id, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="secrets")
    secret_hash = models.CharField(max_length=256, editable=False)
    secret_suffix = models.CharField(max_length=4, editable=False)
    # HMAC-SHA256 of the plain secret under a key derived from SECRET_KEY (``secret_lookup``):
    # finds a reported secret without knowing its client. Null for a secret made before it
    # existed, until that secret is next verified.
    lookup_hmac = models.CharField(
        max_length=64, null=True, blank=True, unique=True, editable=False
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    create_time = models.DateTimeField(default=timezone.now, editable=False)
    update_time = models.DateTimeField(auto_now=True)
    last_used_time = models.DateTimeField(null=True, blank=True)
    expire_time = models.DateTimeField(null=True, blank=True)
    # Where a secret scanner found it (the first report), and when it was reported.
    leak_url = models.CharField(max_length=2048, blank=True, default="", editable=False)
    leak_source = models.CharField(max_length=64, blank=True, default="", editable=False)
    leak_time = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["create_time", "id"]

    def __str__(self) -> str:
        return f"…{self.secret_suffix} ({self.id})"

    def is_expired(self, now=None) -> bool:
        return self.expire_time is not None and self.expire_time <= (now or timezone.now())

    @property
    def effective_status(self) -> str:
        """``EXPIRED`` for an active secret past its expire_time, else the stored status."""
        if self.status == self.Status.ACTIVE and self.is_expired():
            return "EXPIRED"
        return self.status

    def days_left(self, now=None) -> int | None:
        """Days until expire_time, rounded up (1 on its last day, 0 once expired); None when it
        never expires."""
        if self.expire_time is None:
            return None
        seconds = (self.expire_time - (now or timezone.now())).total_seconds()
        return max(0, math.ceil(seconds / 86400))

    def unused_days(self, now=None) -> int:
        """Days since the secret was last used (or made, if never used)."""
        return ((now or timezone.now()) - (self.last_used_time or self.create_time)).days

    @property
    def expiring_soon(self) -> bool:
        """Active, and expiring within the first reminder's days (14 by default)."""
        days = self.days_left()
        reminders = client_settings.SECRET_REMINDER_DAYS
        return (
            self.effective_status == self.Status.ACTIVE
            and days is not None
            and days <= max(reminders, default=0)
        )

    @property
    def leak_link(self) -> str:
        """The leak's URL when it is http(s), to link to; "" otherwise (never a javascript:
        or data: URL from a scanner's report in an href)."""
        return self.leak_url if self.leak_url.startswith(("https://", "http://")) else ""

    @property
    def is_unused(self) -> bool:
        """Unused for UNUSED_SECRET_DAYS: the portal and the API offer to revoke it."""
        return self.unused_days() >= client_settings.UNUSED_SECRET_DAYS


class SecretReminder(models.Model):
    """One expiry reminder sent for a secret (``days`` before it expires): the unique row makes
    it one mail per secret per reminder, however often ``send_reminders`` runs."""

    secret = models.ForeignKey(ClientSecret, on_delete=models.CASCADE, related_name="reminders")
    days = models.PositiveSmallIntegerField()
    create_time = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["secret", "days"], name="unique_secret_reminder")
        ]

    def __str__(self) -> str:
        return f"{self.secret_id}: {self.days} days"


def new_client_key_id() -> str:
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
        ApiClient, on_delete=models.CASCADE, related_name="keys", editable=False
    )
    kid = models.CharField(max_length=128, editable=False)
    kty = models.CharField(max_length=8, editable=False)
    alg = models.CharField(max_length=8, editable=False)
    jwk = models.JSONField(editable=False)
    create_time = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "oauth_clientkey"  # its table from before it moved here
        ordering = ["create_time", "id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "kid"], name="oauth_clientkey_unique_kid")
        ]
        verbose_name = "client public key"

    def __str__(self) -> str:
        return f"{self.kid} ({self.alg}, {self.id})"


def new_trust_policy_id() -> str:
    return random_id("tp_")


def default_policy_audience() -> str:
    """A trust policy's audience by default: our issuer URL (what GitHub's ``audience`` input,
    GitLab's ``aud`` and a projected Kubernetes token are then set to)."""
    return client_settings.ISSUER


class TrustPolicy(models.Model):
    """Which external workload tokens (GitHub Actions, GitLab CI, Kubernetes, any OIDC issuer)
    a client accepts in place of a secret: their issuer, audience, subject and claim conditions
    (workload identity federation, RFC 7523). Rules: ``clients.trust``."""

    id = models.CharField(
        primary_key=True, max_length=32, default=new_trust_policy_id, editable=False
    )
    client = models.ForeignKey(
        ApiClient, on_delete=models.CASCADE, related_name="trust_policies", editable=False
    )
    name = models.CharField(max_length=MAX_NAME_LENGTH)
    issuer = models.CharField(max_length=256)
    # A static JWK Set for an issuer that publishes none; null: the issuer's discovery document.
    jwks = models.JSONField(null=True, blank=True)
    audience = models.CharField(max_length=256, default=default_policy_audience)
    subject = models.CharField(max_length=512, blank=True, default="")
    claim_conditions = models.JSONField(default=list, blank=True)
    max_token_age = models.PositiveIntegerField(default=300)
    create_time = models.DateTimeField(default=timezone.now, editable=False)
    update_time = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["create_time", "id"]
        verbose_name = "trust policy"
        verbose_name_plural = "trust policies"

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    def clean(self) -> None:
        errors = trust_policy_errors(
            issuer=self.issuer,
            jwks=self.jwks,
            audience=self.audience,
            subject=self.subject,
            claim_conditions=self.claim_conditions,
            max_token_age=self.max_token_age,
            allow_http=allow_insecure(),
        )
        if not self.name or not str(self.name).strip():
            errors.setdefault("name", []).append("name is required")
        if errors:
            raise ValidationError(errors)


class AuditEvent(models.Model):
    """Who did what to which object, when and from where. Never edited or deleted."""

    time = models.DateTimeField(default=timezone.now, db_index=True)
    actor_type = models.CharField(max_length=16)  # user | client | system
    actor_id = models.CharField(max_length=64, blank=True, default="")
    actor_display = models.CharField(max_length=255, blank=True, default="")
    organization_id = models.CharField(max_length=32, blank=True, default="", db_index=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=64, db_index=True)
    client_id = models.CharField(max_length=32, blank=True, default="", db_index=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["organization_id", "-time"])]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor_display or self.actor_id} {self.action}"


# --- Secret material -----------------------------------------------------------------------------
# Kept beside the model that owns the secret: one function makes it (and returns the plain value
# once), one checks a presented value against the stored argon2id hash.

_hasher: PasswordHasher | None = None


def secret_hasher() -> PasswordHasher:
    """The process-wide argon2id hasher, with the parameters from settings."""
    global _hasher
    if _hasher is None:
        _hasher = PasswordHasher(
            time_cost=client_settings.ARGON2_TIME_COST,
            memory_cost=client_settings.ARGON2_MEMORY_COST,
            parallelism=client_settings.ARGON2_PARALLELISM,
            type=Type.ID,
        )
    return _hasher


# The format: ``<prefix><body><checksum>``. The body is 43 base62 characters from the OS CSPRNG
# (62**43 > 2**256: at least 256 bits); the checksum is the CRC32 of prefix + body in base62,
# zero-padded to 6 characters, so a scanner can tell a real secret from a lookalike offline.
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SECRET_BODY_LENGTH = 43
SECRET_CHECKSUM_LENGTH = 6
SECRET_PREFIX_RE = re.compile(r"^[A-Za-z0-9_]{3,31}_$")
_BASE62_SET = frozenset(BASE62)


def base62(number: int, width: int) -> str:
    """``number`` in base62 (digits, A-Z, a-z), zero-padded to ``width`` characters."""
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def secret_checksum(prefix_and_body: str) -> str:
    """The 6-character checksum of a secret: CRC32 of prefix + body, in base62."""
    return base62(zlib.crc32(prefix_and_body.encode()), SECRET_CHECKSUM_LENGTH)


def secret_pattern(prefix: str | None = None) -> str:
    """The regular expression of our secrets (published in the README for scanners)."""
    prefix = client_settings.SECRET_PREFIX if prefix is None else prefix
    return (
        re.escape(prefix)
        + f"[0-9A-Za-z]{{{SECRET_BODY_LENGTH}}}[0-9A-Za-z]{{{SECRET_CHECKSUM_LENGTH}}}"
    )


def make_plain_secret() -> str:
    """A new plain secret: the recognisable prefix, 256 bits from the OS CSPRNG in base62, and
    the CRC32 checksum (see above)."""
    prefix = client_settings.SECRET_PREFIX
    body = "".join(secrets.choice(BASE62) for _ in range(SECRET_BODY_LENGTH))
    return prefix + body + secret_checksum(prefix + body)


def has_secret_prefix(value: str) -> bool:
    """Whether ``value`` claims to be a secret of the current format (it carries the prefix)."""
    return value.startswith(client_settings.SECRET_PREFIX)


def secret_format_ok(value: str) -> bool:
    """Whether ``value`` is a well-formed secret of the current format with a right checksum.

    No database, no secret key: what any scanner can check. A secret of the old format (without
    the prefix) is not of this format."""
    prefix = client_settings.SECRET_PREFIX
    if len(value) != len(prefix) + SECRET_BODY_LENGTH + SECRET_CHECKSUM_LENGTH:
        return False
    if not value.startswith(prefix):
        return False
    rest = value[len(prefix) :]
    if not _BASE62_SET.issuperset(rest):
        return False
    body_end = len(value) - SECRET_CHECKSUM_LENGTH
    return value[body_end:] == secret_checksum(value[:body_end])


_LOOKUP_SALT = "m2m-auth.clients.secret-lookup"


def secret_lookup(plain: str, key: str | None = None) -> str:
    """The keyed lookup of a plain secret: HMAC-SHA256 under a key derived from SECRET_KEY
    (Django's ``salted_hmac`` with a salt of its own). Never the secret, never an unkeyed hash:
    without SECRET_KEY the stored value says nothing."""
    return salted_hmac(_LOOKUP_SALT, plain, secret=key, algorithm="sha256").hexdigest()


def secret_lookups(plain: str) -> list[str]:
    """The lookups to search for: under SECRET_KEY and each of SECRET_KEY_FALLBACKS, so that a
    SECRET_KEY rotation done Django's way (the old key kept as a fallback) loses no secret."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [secret_lookup(plain, key) for key in keys]


def hash_secret(plain: str) -> str:
    return secret_hasher().hash(plain)


def check_secret(plain: str, secret_hash: str) -> bool:
    """True when ``plain`` matches the argon2id ``secret_hash`` (constant-time compare)."""
    try:
        return secret_hasher().verify(secret_hash, plain)
    except (VerificationError, InvalidHashError):
        return False


# --- Portal: members, invitations and the provider's API catalog ----------------------------------


class Membership(models.Model):
    """A user's role in an organization. A user may belong to several organizations."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices)
    create_time = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["create_time", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization_id} ({self.role})"

    @property
    def can_manage_clients(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.ADMIN)

    @property
    def can_manage_members(self) -> bool:
        return self.role == self.Role.OWNER


class Invitation(models.Model):
    """An invitation by email. The link carries a signed, expiring token of the id; single use."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=8, choices=Membership.Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    create_time = models.DateTimeField(default=timezone.now, editable=False)
    accepted_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-create_time", "-id"]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization_id} ({self.role})"


INVITATION_SALT = "clients.invitation"


def invitation_token(invitation: Invitation) -> str:
    """The signed token of an invitation's link (it holds the id, nothing secret)."""
    return signing.dumps(invitation.pk, salt=INVITATION_SALT)


def invitation_state(token: str) -> tuple[str, Invitation | None]:
    """What an invitation link says now: ``open`` (with its invitation), ``used`` (with it),
    ``expired``, ``withdrawn`` (cancelled, or its organization deleted) or ``invalid`` (forged),
    so that the page can tell the invited person what happened and what to do."""
    try:
        pk = signing.loads(token, salt=INVITATION_SALT, max_age=settings.PORTAL_INVITATION_MAX_AGE)
    except signing.SignatureExpired:
        return "expired", None
    except signing.BadSignature:
        return "invalid", None
    invitation = Invitation.objects.select_related("organization").filter(pk=pk).first()
    if invitation is None:
        return "withdrawn", None
    return ("used" if invitation.accepted_time else "open"), invitation


def invitation_from_token(token: str) -> Invitation | None:
    """The open invitation a token names, or None when forged, expired, used or gone."""
    state, invitation = invitation_state(token)
    return invitation if state == "open" else None


SIGNUP_SALT = "clients.signup"


def _signup_state(user: Any) -> str:
    # Changes when the account opens or a new sign-up sets another password: an older link dies.
    state = f"{user.pk}:{user.password}:{user.is_active}:{user.last_login}"
    return salted_hmac(SIGNUP_SALT, state).hexdigest()[:32]


def signup_token(user: Any, organization_name: str) -> str:
    """The signed token of a sign-up confirmation link: the account, the organization's name
    and a keyed digest of the account's state, so that the link works once (nothing secret)."""
    payload = {"u": user.pk, "o": organization_name, "s": _signup_state(user)}
    return signing.dumps(payload, salt=SIGNUP_SALT, compress=True)


def signup_from_token(token: str) -> tuple[Any, str] | None:
    """The account waiting for confirmation and its organization's name, or None when the
    token is forged, expired, already used or superseded by a newer sign-up."""
    try:
        payload = signing.loads(
            token, salt=SIGNUP_SALT, max_age=settings.PORTAL_SIGNUP_CONFIRM_MAX_AGE
        )
        user = get_user_model().objects.filter(pk=payload["u"], is_active=False).first()
    except (signing.BadSignature, KeyError, TypeError):  # includes SignatureExpired
        return None
    if user is None or not constant_time_compare(payload.get("s", ""), _signup_state(user)):
        return None
    return user, str(payload["o"])


class ApiResource(models.Model):
    """An API of the provider that customers may grant access to (the catalog, kept by staff)."""

    audience = models.CharField(max_length=MAX_AUDIENCE_LENGTH, unique=True)
    name = name_field()
    description = description_field()
    create_time = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "API"

    def __str__(self) -> str:
        return f"{self.name} ({self.audience})"

    def clean(self) -> None:
        # Everything in the catalog may be granted by a customer to its own clients.
        if self.audience and is_management_audience(self.audience):
            raise ValidationError(
                {"audience": [MANAGEMENT_AUDIENCE_RESERVED.format(value=self.audience)]}
            )


class ApiScope(models.Model):
    """A scope an API offers, with the description customers see."""

    api = models.ForeignKey(ApiResource, on_delete=models.CASCADE, related_name="scopes")
    name = models.CharField(max_length=MAX_SCOPE_LENGTH)
    description = description_field()

    class Meta:
        ordering = ["api", "name"]
        constraints = [models.UniqueConstraint(fields=["api", "name"], name="unique_api_scope")]
        verbose_name = "API scope"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not SCOPE_TOKEN_RE.match(self.name or ""):
            raise ValidationError({"name": ["a scope is an RFC 6749 scope token (no spaces)"]})
        if is_management_scope(self.name):
            raise ValidationError({"name": [MANAGEMENT_SCOPE_RESERVED.format(value=self.name)]})


# --- Token statistics for the staff dashboard ---------------------------------------------------


# --- Outbox: background work written in the transaction of the change ---------------------------


class OutboxTask(models.Model):
    """One piece of background work (an e-mail, later a webhook), run by ``manage.py run_worker``.

    Written in the same transaction as the change that asks for it (``services.enqueue``), so a
    rolled-back change leaves no task and a committed one never loses its task. The payload names
    what to do (ids, addresses), never a secret; it is emptied once the task is done.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        DEAD = "dead"

    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True, default="")
    create_time = models.DateTimeField(default=timezone.now, editable=False)
    update_time = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["next_attempt_at", "id"]
        # The worker's claim: due tasks of a status, oldest first.
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


# --- One-time forms: a submitted form is claimed once -------------------------------------------


class FormClaim(models.Model):
    """A one-time form token, claimed by the first submission that carries it.

    The claim is a unique row inserted in the transaction of the change it guards, so any number
    of concurrent submissions of one form (a double click, a reload, four tabs) make one change:
    the others fail the insert and are shown what the first one made (``target_id``).
    """

    token = models.CharField(primary_key=True, max_length=64)
    kind = models.CharField(max_length=32)
    organization_id = models.CharField(max_length=32, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    create_time = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.kind} {self.target_id or '(pending)'}"


# --- Webhooks: events out, signed (Standard Webhooks), delivered through the outbox --------------


def new_webhook_endpoint_id() -> str:
    return random_id("whe_")


def new_webhook_event_id() -> str:
    # The Standard Webhooks ``webhook-id``: the same across an event's retries.
    return random_id("msg_")


def new_webhook_delivery_id() -> str:
    return random_id("whd_")


class WebhookEndpoint(models.Model):
    """An HTTPS URL that receives our events: an organization's (its events only) or, with no
    organization, the provider's (every event).

    The signing secret must be usable for HMAC, so it cannot be hashed: it is stored encrypted
    (``clients.webhooks.encrypt_secret``) and shown once, at creation and at rotation. After a
    rotation the previous secret also signs until ``previous_secret_expire_time``.
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_webhook_endpoint_id)
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
    )
    url = models.CharField(max_length=2000)
    event_types = models.JSONField(default=list, blank=True)
    description = description_field()
    enabled = models.BooleanField(default=True)
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_secret_expire_time = models.DateTimeField(null=True, blank=True, editable=False)
    # Set by the first failure after a success; an endpoint failing for 5 days is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    create_time = models.DateTimeField(default=timezone.now, editable=False)
    update_time = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["create_time", "id"]

    def __str__(self) -> str:
        return f"{self.url} ({self.id})"


class WebhookEvent(models.Model):
    """One event for the webhooks, written in the transaction of the change (with its audit
    event). ``organization_id`` is kept as text so the event outlives its organization."""

    id = models.CharField(primary_key=True, max_length=32, default=new_webhook_event_id)
    type = models.CharField(max_length=64)
    organization_id = models.CharField(max_length=32, blank=True, default="")
    timestamp = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-timestamp", "id"]
        indexes = [models.Index(fields=["organization_id", "timestamp"], name="webhook_event_org")]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class WebhookDelivery(models.Model):
    """One attempt to deliver an event to an endpoint, as the portal and the API list them."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=32, default=new_webhook_delivery_id)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True, default="")
    create_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-create_time", "-id"]
        indexes = [models.Index(fields=["endpoint", "create_time"], name="webhook_delivery_recent")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} #{self.attempt} ({self.status})"
