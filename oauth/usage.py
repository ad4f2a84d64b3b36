"""Reading the per-client token counts (``oauth.TokenUsage``): series per hour or day, the top
clients, refusals by reason, and the token-caching advisor. Callers check tenancy first (the
organization or client comes from ``clients.selectors``); everything here filters by its id."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, Sum

from oauth import stats
from oauth.models import TokenUsage

GRANULARITIES = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def floor(moment: datetime, granularity: str) -> datetime:
    """The start of the hour or UTC day ``moment`` falls in."""
    moment = moment.astimezone(UTC)
    if granularity == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def utc_now() -> datetime:
    return datetime.fromtimestamp(stats.now(), tz=UTC)


def _rows(organization_id: str, client_id: str | None, start: datetime, end: datetime) -> Any:
    rows = TokenUsage.objects.filter(organization_id=organization_id, hour__gte=start, hour__lt=end)
    if client_id is not None:
        rows = rows.filter(client_id=client_id)
    return rows


def series(
    *,
    organization_id: str,
    client_id: str | None,
    start: datetime,
    end: datetime,
    granularity: str,
) -> list[dict[str, Any]]:
    """One entry per hour or day from ``start`` (rounded down) to ``end`` (excluded), empty ones
    included: ``{"start_time", "tokens_issued", "requests_refused": {reason: n}}``."""
    step = GRANULARITIES[granularity]
    first = floor(start, granularity)
    buckets: dict[datetime, dict[str, Any]] = {}
    moment = first
    while moment < end:
        buckets[moment] = {"start_time": moment, "tokens_issued": 0, "requests_refused": {}}
        moment += step
    counted = (
        _rows(organization_id, client_id, first, end)
        .values("hour", "reason")
        .annotate(n=Sum("count"))
        .order_by()
    )
    for row in counted:
        bucket = buckets.get(floor(row["hour"], granularity))
        if bucket is None:
            continue
        if row["reason"]:
            refused = bucket["requests_refused"]
            refused[row["reason"]] = refused.get(row["reason"], 0) + row["n"]
        else:
            bucket["tokens_issued"] += row["n"]
    for bucket in buckets.values():
        bucket["requests_refused"] = dict(sorted(bucket["requests_refused"].items()))
    return list(buckets.values())


def refusals_by_reason(
    *, organization_id: str, client_id: str | None, start: datetime, end: datetime
) -> list[tuple[str, int]]:
    """(reason, count) of the refused requests in the range, most first."""
    rows = (
        _rows(organization_id, client_id, start, end)
        .exclude(reason="")
        .values("reason")
        .annotate(n=Sum("count"))
        .order_by("-n", "reason")
    )
    return [(row["reason"], row["n"]) for row in rows]


@dataclass(frozen=True)
class ClientUsage:
    client_id: str
    organization_id: str
    issued: int
    refused: int


def top_clients(
    *, organization_id: str | None, start: datetime, end: datetime, limit: int = 10
) -> list[ClientUsage]:
    """The clients that took the most tokens in the range (of one organization, or of all)."""
    rows = TokenUsage.objects.filter(hour__gte=start, hour__lt=end)
    if organization_id is not None:
        rows = rows.filter(organization_id=organization_id)
    counted = (
        rows.values("client_id", "organization_id")
        .annotate(
            issued=Sum("count", filter=Q(reason="")),
            refused=Sum("count", filter=~Q(reason="")),
            hours=Count("hour"),
        )
        .order_by("-issued", "client_id")[:limit]
    )
    return [
        ClientUsage(
            row["client_id"], row["organization_id"], row["issued"] or 0, row["refused"] or 0
        )
        for row in counted
    ]


# The advisor: a client that caches its token needs about one per token lifetime (a few more
# when it runs on several machines). More than this many times what its lifetime justifies, and
# at least this many per hour, in the busiest hour of the last day, is a client that does not
# cache.
ADVISOR_FACTOR = 3
ADVISOR_MINIMUM_PER_HOUR = 10


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{round(minutes / 60)} hours"


def _lifetime(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "an hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "a minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"


def advice(*, client_id: str, organization_id: str, token_lifetime: int) -> str | None:
    """A plain-words warning when the client took, in its busiest hour of the last 24, more
    tokens than its token lifetime justifies (it does not cache them); else None."""
    end = utc_now()
    start = floor(end, "hour") - timedelta(hours=23)
    busiest = (
        _rows(organization_id, client_id, start, end + timedelta(hours=1))
        .filter(reason="")
        .values("hour")
        .annotate(n=Sum("count"))
        .order_by("-n")
        .first()
    )
    if busiest is None:
        return None
    per_hour = busiest["n"]
    justified = max(ADVISOR_MINIMUM_PER_HOUR, ADVISOR_FACTOR * 3600 / max(token_lifetime, 1))
    if per_hour <= justified:
        return None
    return (
        f"This client requests a new token every {_duration(3600 / per_hour)} "
        f"({per_hour} in its busiest hour) although each lasts {_lifetime(token_lifetime)}: "
        "cache the token and reuse it until shortly before it expires."
    )


def per_client_totals(
    *, organization_id: str, start: datetime, end: datetime
) -> dict[str, tuple[int, int]]:
    """{client id: (issued, refused)} in the range."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in (
        _rows(organization_id, None, start, end)
        .values("client_id", "reason")
        .annotate(n=Sum("count"))
        .order_by()
    ):
        totals[row["client_id"]][1 if row["reason"] else 0] += row["n"]
    return {cid: (v[0], v[1]) for cid, v in totals.items()}


def used_in_window(*, subject_type: str, subject_id: str, window: str) -> int:
    """Tokens issued in the current hour or UTC day (as written by the flushes)."""
    start = floor(utc_now(), window)
    field = "client_id" if subject_type == "client" else "organization_id"
    rows = TokenUsage.objects.filter(**{field: subject_id}, reason="", hour__gte=start)
    return rows.aggregate(n=Sum("count"))["n"] or 0
