"""The figures of the staff dashboard (the admin index): a few aggregate queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from clients.models import ApiClient, ClientSecret, Organization
from oauth import usage
from oauth.models import TokenStat

TOP_ORGANIZATIONS = 10
STALE_DAYS = 90
STALE_SHOWN = 10


@dataclass
class Dashboard:
    issued: int
    failed: int
    stale_count: int
    stale_days: int = STALE_DAYS
    top: list[Organization] = field(default_factory=list)
    top_clients: list[dict] = field(default_factory=list)
    stale: list[ClientSecret] = field(default_factory=list)


def stale_secrets(now: datetime | None = None, days: int = STALE_DAYS) -> Q:
    """Secrets not used for ``days``: last used before the cutoff, or never and older than it."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return Q(last_used_time__lt=cutoff) | Q(last_used_time__isnull=True, create_time__lt=cutoff)


def dashboard(now: datetime | None = None) -> Dashboard:
    """Token counts of the last 24 hours, the biggest organizations, and secrets gone stale."""
    now = now or timezone.now()
    # Hour buckets: the current hour and the 23 before it.
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    totals = TokenStat.objects.filter(hour__gte=since).aggregate(
        issued=Sum("issued"), failed=Sum("failed")
    )
    stale = ClientSecret.objects.filter(stale_secrets(now))
    top = list(
        Organization.objects.annotate(n_clients=Count("clients"))
        .order_by("-n_clients", "display_name")
        .only("id", "display_name")[:TOP_ORGANIZATIONS]
    )
    busiest = usage.top_clients(organization_id=None, start=since, end=now + timedelta(hours=1))
    names = dict(
        ApiClient.objects.filter(id__in=[u.client_id for u in busiest]).values_list("id", "name")
    )
    top_clients = [
        {
            "id": u.client_id,
            "name": names.get(u.client_id, u.client_id),
            "issued": u.issued,
            "refused": u.refused,
        }
        for u in busiest
    ]
    return Dashboard(
        top_clients=top_clients,
        issued=totals["issued"] or 0,
        failed=totals["failed"] or 0,
        stale_count=stale.count(),
        top=top,
        stale=list(
            stale.select_related("client").order_by("last_used_time", "create_time")[:STALE_SHOWN]
        ),
    )
