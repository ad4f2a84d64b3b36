"""Webhooks: every audit event out to the endpoints that want it, signed per Standard Webhooks.

``emit`` is called by the one audit helper (``clients.services.audit.audit_record``) in the
transaction of the change: it writes the ``WebhookEvent`` and one outbox task
(``webhook.deliver``) per matching enabled endpoint, so a change that commits always has its
deliveries and one that rolls back has none (a transactional outbox). The handler
(``clients.tasks.webhook_deliver``) signs and POSTs through the one safe fetcher.

This module knows the public event types, the payloads (public fields only, never secret
material), the signing secrets (``whsec_…``, encrypted at rest) and the signature; it imports
models and the bottom layer only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Counter

from clients.models import (
    ApiClient,
    AuditEvent,
    ClientKey,
    ClientSecret,
    Invitation,
    Membership,
    Organization,
    OutboxTask,
    TrustPolicy,
    WebhookEndpoint,
    WebhookEvent,
)
from portal.lib.outbound import OutboundRefused, allow_insecure, checked_addresses

DELIVER_KIND = "webhook.deliver"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
# After a rotation the previous secret signs too, for this long (Standard Webhooks allows several
# signatures in one header, so receivers switch secrets without losing an event).
ROTATION_OVERLAP_SECONDS = 24 * 3600
TIMEOUT_SECONDS = 10.0
# Waits after the 1st, 2nd… failed attempt: eight attempts over about 28 hours (with jitter).
RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
DISABLE_AFTER_SECONDS = 5 * 86400
TEST_EVENT_TYPE = "webhook.test"
# Events and their delivery log are kept this long (``manage.py purge_expired``): well past
# the last retry (about 28 hours), long enough to read what happened last month.
EVENT_RETENTION_DAYS = 30

# Counted in the worker that delivers (with PROMETHEUS_MULTIPROC_DIR shared with the web server,
# /metrics adds the workers' counts up). outcome: success, failure (retried), gone (410).
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries", "Webhook delivery attempts, by outcome.", ["outcome"]
)

# Every audit action and the public event type it becomes. Actions left out (per-token events:
# token.revoke, token.federated) are not webhook events: they come with token traffic, not with
# a change an integrator reacts to.
EVENT_TYPES: dict[str, str] = {
    "organization.create": "organization.created",
    "organization.update": "organization.updated",
    "organization.delete": "organization.deleted",
    "organization.restrict_apis": "organization.updated",
    "client.create": "client.created",
    "client.update": "client.updated",
    "client.delete": "client.deleted",
    "management_client.create": "management_client.created",
    "secret.create": "secret.created",
    "secret.activate": "secret.activated",
    "secret.deactivate": "secret.deactivated",
    "secret.delete": "secret.revoked",
    "secret.leak": "secret.leaked",
    "secret.expiry_reminder": "secret.expiring",
    "client_key.create": "key.added",
    "client_key.delete": "key.removed",
    "trust_policy.create": "trust_policy.created",
    "trust_policy.update": "trust_policy.updated",
    "trust_policy.delete": "trust_policy.deleted",
    "member.add": "member.joined",
    "member.role_change": "member.role_changed",
    "member.remove": "member.removed",
    "invitation.create": "member.invited",
    "invitation.cancel": "invitation.cancelled",
    "invitation.resend": "invitation.resent",
    "quota.warn": "quota.warning",
    "quota.exceed": "quota.exceeded",
    "api.create": "api.created",
    "api.update": "api.updated",
    "api.delete": "api.deleted",
    "api.scope_add": "api.updated",
    "api.scope_update": "api.updated",
    "api.scope_delete": "api.updated",
    "signing_key.rotate": "signing_key.rotated",
    "signing_key.withdraw": "signing_key.withdrawn",
    "webhook_endpoint.create": "webhook_endpoint.created",
    "webhook_endpoint.update": "webhook_endpoint.updated",
    "webhook_endpoint.delete": "webhook_endpoint.deleted",
    "webhook_endpoint.rotate_secret": "webhook_endpoint.secret_rotated",
    "webhook_endpoint.disable": "webhook_endpoint.disabled",
}
PUBLIC_TYPES: tuple[str, ...] = tuple(sorted(set(EVENT_TYPES.values())))


# --- Validation ----------------------------------------------------------------------------------


def url_errors(url: str) -> str | None:
    """Why ``url`` cannot be an endpoint, or None. Addresses are checked again at each delivery
    by the fetcher (a name may resolve elsewhere later); here a literal address is refused."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "Enter a valid URL (no spaces or control characters)."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Enter a valid URL."
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_insecure()):
        return "The URL must start with https://."
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return "The URL must name a host and no credentials."
    if len(url) > 2000:
        return "The URL is too long (at most 2000 characters)."
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if "." not in host and host != "localhost":
            return "The URL must name a public host."
        if host == "localhost" and not allow_insecure():
            return "The URL must name a public host."
        return None
    try:
        checked_addresses(host, port or 443)
    except OutboundRefused as exc:
        return f"The URL must name a public address ({exc})."
    return None


def event_type_errors(event_types: Any) -> str | None:
    """Why ``event_types`` is not a list of known types (empty: all), or None."""
    if not isinstance(event_types, list) or not all(isinstance(t, str) for t in event_types):
        return "A list of event types (empty for all)."
    unknown = sorted(set(event_types) - set(PUBLIC_TYPES))
    if unknown:
        return f"Unknown event types: {', '.join(unknown)}."
    return None


# --- Signing secrets -----------------------------------------------------------------------------


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


@cache
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for key in keys:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"m2m webhook secret v1"
        ).derive(key.encode())
        fernets.append(Fernet(base64.urlsafe_b64encode(derived)))
    return MultiFernet(fernets)


def _fernet() -> MultiFernet:
    # The same key-encryption secrets as the signing keys (README: "What is encrypted").
    keys = (getattr(settings, "OAUTH", {}) or {}).get("KEY_ENCRYPTION_KEYS") or [
        settings.SECRET_KEY
    ]
    return _fernet_for(tuple(keys))


def encrypt_secret(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode("ascii")


def decrypt_secret(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during the overlap."""
    found = [decrypt_secret(endpoint.secret_encrypted)]
    expire = endpoint.previous_secret_expire_time
    if endpoint.previous_secret_encrypted and expire is not None and expire > now:
        found.append(decrypt_secret(endpoint.previous_secret_encrypted))
    return found


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` under the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    endpoint: WebhookEndpoint, message_id: str, body: bytes, now: datetime
) -> dict[str, str]:
    timestamp = int(now.timestamp())
    signatures = [signature(s, message_id, timestamp, body) for s in signing_secrets(endpoint, now)]
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


# --- Events --------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _target_fields(target: Any) -> dict[str, Any]:
    """The public fields of the changed object, as the management API shows them."""
    if isinstance(target, ApiClient):
        return {
            "client_id": target.id,
            "name": target.name,
            "description": target.description,
            "organization_id": target.organization_id,
            "scopes": list(target.scopes or []),
            "audience": list(target.audience or []),
            "expiry": target.expiry,
            "create_time": _time(target.create_time),
            "update_time": _time(target.update_time),
        }
    if isinstance(target, ClientSecret):
        return {
            "secret_id": target.id,
            "client_id": target.client_id,
            "secret_suffix": target.secret_suffix,
            "status": target.effective_status,
            "expire_time": _time(target.expire_time),
            "create_time": _time(target.create_time),
        }
    if isinstance(target, ClientKey):
        return {
            "key_id": target.id,
            "client_id": target.client_id,
            "kid": target.kid,
            "kty": target.kty,
            "alg": target.alg,
        }
    if isinstance(target, TrustPolicy):
        return {
            "trust_policy_id": target.id,
            "client_id": target.client_id,
            "name": target.name,
            "issuer": target.issuer,
            "audience": target.audience,
            "subject": target.subject,
        }
    if isinstance(target, Organization):
        return {
            "organization_id": target.id,
            "display_name": target.display_name,
            "external_id": target.external_id,
        }
    if isinstance(target, Membership):
        return {"user": target.user.get_username(), "role": target.role}
    if isinstance(target, Invitation):
        return {"email": target.email, "role": target.role}
    if isinstance(target, WebhookEndpoint):
        return {
            "webhook_endpoint_id": target.id,
            "url": target.url,
            "event_types": list(target.event_types),
            "enabled": target.enabled,
        }
    return {}


def event_data(audit: AuditEvent, target: Any = None) -> dict[str, Any]:
    """What an event's ``data`` holds: who, what, the object's public fields, and the audit
    event's details (names as they were, before/after of changes; never secret material)."""
    data: dict[str, Any] = {
        "object_type": audit.target_type,
        "object_id": audit.target_id,
        "organization_id": audit.organization_id or None,
        "client_id": audit.client_id or None,
        "actor": {"type": audit.actor_type, "id": audit.actor_id},
        "audit_event_id": audit.pk,
    }
    data.update(_target_fields(target))
    data["details"] = dict(audit.details or {})
    return data


def _wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return not endpoint.event_types or event_type in endpoint.event_types


def matching_endpoints(event_type: str, organization_id: str) -> list[WebhookEndpoint]:
    """The enabled endpoints that get an event: the organization's and the provider's."""
    scope = Q(organization__isnull=True)
    if organization_id:
        scope |= Q(organization_id=organization_id)
    endpoints = WebhookEndpoint.objects.filter(scope, enabled=True).only(
        "id", "event_types", "organization_id"
    )
    return [e for e in endpoints if _wants(e, event_type)]


def emit(audit: AuditEvent, target: Any = None) -> WebhookEvent | None:
    """The event of ``audit`` and its delivery tasks, in the caller's transaction.

    One query when no endpoint wants it (then nothing is written)."""
    event_type = EVENT_TYPES.get(audit.action)
    if event_type is None:
        return None
    endpoints = matching_endpoints(event_type, audit.organization_id)
    if not endpoints:
        return None
    event = WebhookEvent.objects.create(
        type=event_type,
        organization_id=audit.organization_id,
        timestamp=audit.time,
        data=event_data(audit, target),
    )
    enqueue_deliveries(event, endpoints)
    return event


def enqueue_deliveries(event: WebhookEvent, endpoints: list[WebhookEndpoint]) -> None:
    OutboxTask.objects.bulk_create(
        [
            OutboxTask(kind=DELIVER_KIND, payload={"event_id": event.id, "endpoint_id": e.id})
            for e in endpoints
        ]
    )


def body(event: WebhookEvent) -> bytes:
    """The JSON body of an event (the same bytes on every retry)."""
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "timestamp": _time(event.timestamp),
            "data": event.data,
        },
        separators=(",", ":"),
        sort_keys=False,
    ).encode()


def purge_old_events(older_than: timedelta = timedelta(days=EVENT_RETENTION_DAYS)) -> int:
    """Delete events (and their delivery attempts) older than ``older_than``; how many."""
    cutoff = timezone.now() - older_than
    old = WebhookEvent.objects.filter(timestamp__lt=cutoff)
    count = old.count()
    old.delete()
    return count
