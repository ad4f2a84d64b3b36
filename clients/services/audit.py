"""Who made a change, and the audit event every service writes for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clients.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a portal user, a management client, or the system (commands)."""

    type: str  # "user" | "client" | "system"
    id: str = ""
    display: str = ""
    ip: str | None = None

    @classmethod
    def system(cls, display: str = "system") -> Actor:
        return cls(type="system", display=display)

    @classmethod
    def for_user(cls, user: Any, ip: str | None = None) -> Actor:
        return cls(type="user", id=str(user.pk), display=user.get_username(), ip=ip)

    @classmethod
    def for_client(cls, client_id: str, ip: str | None = None) -> Actor:
        return cls(type="client", id=client_id, display=client_id, ip=ip)


def audit_record(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    organization_id: str | None = None,
    client_id: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Write one audit event. Called by every service below, never by a view."""
    return AuditEvent.objects.create(
        actor_type=actor.type,
        actor_id=actor.id,
        actor_display=actor.display,
        organization_id=organization_id or "",
        action=action,
        target_type=target_type,
        target_id=target_id,
        client_id=client_id,
        source_ip=actor.ip,
        details=details or {},
    )
