"""Audit events as people read them: one plain sentence per event.

The portal's activity page and the management API's ``audit-events`` say the same thing, so the
sentences live here, beside the events, once. An event keeps the names it needs (the client's
name, the member's address, a secret's last four characters) as they were when it happened; an
older event without them falls back to the names the caller knows now (``names``), then to ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from clients.models import AuditEvent

# The kinds a reader filters by: the part of an action before its dot.
KINDS = {
    "client": "Clients",
    "secret": "Secrets",
    "client_key": "Public keys",
    "member": "Members",
    "invitation": "Invitations",
    "organization": "Organization",
    "token": "Tokens",
    "webhook_endpoint": "Webhooks",
}

FIELD_NAMES = {
    "name": "name",
    "description": "description",
    "scopes": "scopes",
    "audience": "APIs",
    "custom_claims": "custom claims",
    "expiry": "token lifetime",
    "display_name": "name",
    "external_id": "external id",
}


def _value(value: Any) -> str:
    """A field's value in a sentence: lists joined, claims as key=value, nothing as (none)."""
    if value in (None, "", []):
        return "(none)"
    if isinstance(value, list):
        return ", ".join(
            f"{v.get('key')}={v.get('value')}" if isinstance(v, dict) else str(v) for v in value
        )
    return str(value)


def changes_text(changes: Mapping[str, Any]) -> str:
    """``name: "Old" → "New"; token lifetime: 3600 → 600`` from ``{field: [before, after]}``."""
    parts = []
    # By field name: a JSON object's key order does not survive PostgreSQL's jsonb.
    for field, pair in sorted(changes.items()):
        if isinstance(pair, list | tuple) and len(pair) == 2:
            before, after = pair
            parts.append(f"{FIELD_NAMES.get(field, field)}: {_value(before)} → {_value(after)}")
    return "; ".join(parts)


def _client(event: AuditEvent, names: Mapping[str, str]) -> str:
    return (
        event.details.get("client_name")
        or event.details.get("name")
        or names.get(event.client_id)
        or event.client_id
        or event.target_id
    )


def _who(event: AuditEvent) -> str:
    if event.actor_type == "client":
        return f"API client {event.actor_display or event.actor_id}"
    return event.actor_display or event.actor_id or event.actor_type


def _secret(event: AuditEvent) -> str:
    suffix = event.details.get("secret_suffix")
    return f"secret …{suffix}" if suffix else "a secret"


def _updated(event: AuditEvent, names: Mapping[str, str]) -> str:
    said = changes_text(event.details.get("changes") or {})
    if not said and event.details.get("changed"):
        said = "changed " + ", ".join(event.details["changed"])
    return f"updated client {_client(event, names)}" + (f" ({said})" if said else "")


def _organization_updated(event: AuditEvent, names: Mapping[str, str]) -> str:
    said = changes_text(event.details.get("changes") or {})
    return "updated the organization" + (f" ({said})" if said else "")


D = Mapping[str, str]
WHAT: dict[str, Callable[[AuditEvent, D], str]] = {
    "client.create": lambda e, n: f"registered client {_client(e, n)}",
    "client.update": _updated,
    "client.delete": lambda e, n: f"deleted client {_client(e, n)}",
    "management_client.create": lambda e, n: f"created management client {_client(e, n)}",
    "secret.create": lambda e, n: f"generated {_secret(e)} of {_client(e, n)}",
    "secret.delete": lambda e, n: f"revoked {_secret(e)} of {_client(e, n)}",
    "secret.deactivate": lambda e, n: f"deactivated {_secret(e)} of {_client(e, n)}",
    "secret.activate": lambda e, n: f"reactivated {_secret(e)} of {_client(e, n)}",
    "secret.leak": lambda e, n: (
        f"reported {_secret(e)} of {_client(e, n)} leaked at {e.details.get('url') or '?'}"
        + (" and revoked it" if e.details.get("revoked") else " (not revoked: notify only)")
    ),
    "secret.expiry_reminder": lambda e, n: (
        f"reminded the owners that {_secret(e)} of {_client(e, n)} expires in "
        f"{e.details.get('days_left')} days"
    ),
    "client_key.create": lambda e, n: (
        f"added public key {e.details.get('kid', '')} to {_client(e, n)}"
    ),
    "client_key.delete": lambda e, n: (
        f"removed public key {e.details.get('kid', '')} from {_client(e, n)}"
    ),
    "token.revoke": lambda e, n: f"revoked an access token of {_client(e, n)}",
    "member.add": lambda e, n: (
        f"added {e.details.get('user', 'a member')} as {e.details.get('role', 'member')}"
    ),
    "member.role_change": lambda e, n: (
        f"changed the role of {e.details.get('user', 'a member')}: "
        f"{e.details.get('from', '?')} → {e.details.get('to', '?')}"
    ),
    "member.remove": lambda e, n: f"removed {e.details.get('user', 'a member')}",
    "invitation.create": lambda e, n: (
        f"invited {e.details.get('email', 'someone')} as {e.details.get('role', 'member')}"
    ),
    "invitation.cancel": lambda e, n: f"cancelled the invitation of {e.details.get('email', '')}",
    "invitation.resend": lambda e, n: f"sent the invitation to {e.details.get('email', '')} again",
    "organization.create": lambda e, n: "created the organization",
    "organization.update": _organization_updated,
    "organization.restrict_apis": lambda e, n: "changed which APIs the organization may use",
    "webhook_endpoint.create": lambda e, n: f"added webhook endpoint {e.details.get('url', '')}",
    "webhook_endpoint.update": lambda e, n: (
        f"updated webhook endpoint {e.details.get('url', '')}"
        + (f" ({said})" if (said := changes_text(e.details.get("changes") or {})) else "")
    ),
    "webhook_endpoint.delete": lambda e, n: f"deleted webhook endpoint {e.details.get('url', '')}",
    "webhook_endpoint.rotate_secret": lambda e, n: (
        f"rotated the signing secret of webhook endpoint {e.details.get('url', '')}"
    ),
    "webhook_endpoint.disable": lambda e, n: (
        f"disabled webhook endpoint {e.details.get('url', '')}: {e.details.get('reason', '')}"
    ),
}


def event_sentence(event: AuditEvent, names: Mapping[str, str] | None = None) -> str:
    """``owner@example.com revoked secret …Ma1Q of GitHub Actions Deployment Service``."""
    what = WHAT.get(event.action)
    said = (
        what(event, names or {})
        if what
        else f"did {event.action} on {event.target_type} {event.target_id}"
    )
    return f"{_who(event)} {said}"
