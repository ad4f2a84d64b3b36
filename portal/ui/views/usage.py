"""Usage pages: an organization's token usage, a client's usage panel, and its quota form.

Charts are server-rendered SVG (``role="img"`` with a title and a description) beside a data
table, so they read without JavaScript and with a screen reader."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from clients import selectors, services
from clients.models import ApiClient, Membership, Organization
from oauth import usage
from portal.ui import forms
from portal.ui.tenancy import member_view
from portal.ui.views._common import actor_for, org_context

RANGES = {
    "24h": ("Last 24 hours", timedelta(hours=24), "hour"),
    "7d": ("Last 7 days", timedelta(days=7), "day"),
    "30d": ("Last 30 days", timedelta(days=30), "day"),
}
CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_BOTTOM, CHART_TOP = 720, 250, 48, 36, 16
# The kit's README, section "Call an API: ClientCredentials" (token caching done for you).
KIT_DOCS = "https://pypi.org/project/m2m-auth-kit/#call-an-api-clientcredentials"


def _range(request: HttpRequest) -> tuple[str, str, timedelta, str]:
    key = request.GET.get("range", "24h")
    if key not in RANGES:
        key = "24h"
    label, span, granularity = RANGES[key]
    return key, label, span, granularity


def _nice_max(value: int) -> int:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 5:
        return 5
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def chart(entries: list[dict[str, Any]], granularity: str, title: str) -> dict[str, Any]:
    """The geometry of a bar chart of issued (and, stacked on top, refused) per bucket."""
    rows = []
    for entry in entries:
        refused = sum(entry["requests_refused"].values())
        rows.append((entry["start_time"], entry["tokens_issued"], refused))
    top = _nice_max(max((i + r for _, i, r in rows), default=0))
    plot_w = CHART_WIDTH - CHART_LEFT - 8
    plot_h = CHART_HEIGHT - CHART_BOTTOM - CHART_TOP
    slot = plot_w / max(len(rows), 1)
    bar_w = max(2.0, slot * 0.7)
    bars, labels = [], []
    every = max(1, len(rows) // 8)
    for index, (start, issued, refused) in enumerate(rows):
        x = CHART_LEFT + index * slot + (slot - bar_w) / 2
        issued_h = plot_h * issued / top
        refused_h = plot_h * refused / top
        base = CHART_TOP + plot_h
        label = start.strftime("%H:%M") if granularity == "hour" else start.strftime("%b %d")
        bars.append(
            {
                "x": round(x, 1),
                "w": round(bar_w, 1),
                "issued_y": round(base - issued_h, 1),
                "issued_h": round(issued_h, 1),
                "refused_y": round(base - issued_h - refused_h, 1),
                "refused_h": round(refused_h, 1),
                "label": label,
                "issued": issued,
                "refused": refused,
            }
        )
        if index % every == 0:
            labels.append({"x": round(x + bar_w / 2, 1), "text": label})
    grid = [
        {"y": round(CHART_TOP + plot_h - plot_h * f, 1), "value": round(top * f)}
        for f in (0, 0.25, 0.5, 0.75, 1)
    ]
    total_issued = sum(i for _, i, _ in rows)
    total_refused = sum(r for _, _, r in rows)
    busiest = max(rows, key=lambda row: row[1], default=None)
    description = f"{total_issued} tokens issued and {total_refused} requests refused"
    if busiest is not None and busiest[1]:
        when = busiest[0].strftime("%Y-%m-%d %H:%M UTC" if granularity == "hour" else "%Y-%m-%d")
        description += f"; the busiest {granularity} was {when} with {busiest[1]} tokens"
    return {
        "title": title,
        "description": description + ".",
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "right": CHART_WIDTH - 8,
        "baseline": CHART_TOP + plot_h,
        "label_y": CHART_HEIGHT - 8,
        "bars": bars,
        "labels": labels,
        "grid": grid,
        "total_issued": total_issued,
        "total_refused": total_refused,
        "granularity": granularity,
    }


def quota_bars(subject: Organization | ApiClient, subject_type: str) -> list[dict[str, Any]]:
    """One bar per window that has a quota: used, limit, remaining, percent."""
    bars = []
    for window, limit in (
        ("hour", subject.token_quota_per_hour),
        ("day", subject.token_quota_per_day),
    ):
        if limit is None:
            continue
        used = usage.used_in_window(subject_type=subject_type, subject_id=subject.id, window=window)
        percent = min(100, round(100 * used / limit))
        bars.append(
            {
                "window": window,
                "limit": limit,
                "used": used,
                "remaining": max(0, limit - used),
                "percent": percent,
                "level": "over" if used >= limit else "high" if percent >= 80 else "ok",
                "mode": subject.token_quota_mode,
            }
        )
    return bars


def usage_context(
    request: HttpRequest, organization: Organization, client: ApiClient | None
) -> dict[str, Any]:
    key, label, span, granularity = _range(request)
    end = usage.utc_now() + timedelta(seconds=1)
    start = usage.floor(end - span, granularity)
    if granularity == "hour":
        start += timedelta(hours=1)  # 24 bars, the current hour last
    else:
        start += timedelta(days=1)
    client_id = client.id if client is not None else None
    entries = usage.series(
        organization_id=organization.id,
        client_id=client_id,
        start=start,
        end=end,
        granularity=granularity,
    )
    whose = client.name if client is not None else organization.display_name
    context: dict[str, Any] = {
        "range_key": key,
        "range_label": label,
        "ranges": [(k, v[0]) for k, v in RANGES.items()],
        "chart": chart(entries, granularity, f"Token requests of {whose}, {label.lower()}"),
        "entries": entries,
        "refusals": usage.refusals_by_reason(
            organization_id=organization.id, client_id=client_id, start=start, end=end
        ),
        "kit_docs": KIT_DOCS,
    }
    if client is not None:
        context["quota_bars"] = quota_bars(client, "client")
        context["advice"] = usage.advice(
            client_id=client.id, organization_id=organization.id, token_lifetime=client.expiry
        )
    else:
        context["quota_bars"] = quota_bars(organization, "organization")
        clients = {c.id: c for c in selectors.client_list(organization)}
        top = usage.top_clients(organization_id=organization.id, start=start, end=end)
        context["top_clients"] = [
            {"usage": row, "client": clients.get(row.client_id)}
            for row in top
            if row.client_id in clients
        ]
        context["advice_list"] = [
            (c, text)
            for c in clients.values()
            if (
                text := usage.advice(
                    client_id=c.id, organization_id=organization.id, token_lifetime=c.expiry
                )
            )
        ]
    return context


@require_GET
@member_view()
def organization_usage(request: HttpRequest, member: Membership) -> HttpResponse:
    context = org_context(request, member, **usage_context(request, member.organization, None))
    return render(request, "portal/usage.html", context)


@require_POST
@member_view(manage_clients=True)
def client_quota(request: HttpRequest, member: Membership, client_id: str) -> HttpResponse:
    client = selectors.client_get(member.organization, client_id)
    form = forms.QuotaForm(request.POST)
    if form.is_valid():
        try:
            services.client_update(
                actor=actor_for(request), client=client, token_quota=form.quota()
            )
        except ValidationError as exc:
            for problems in exc.message_dict.values():
                for problem in problems:
                    messages.error(request, f"Quota not saved: {problem}")
        else:
            messages.success(request, f"Saved the token quota of {client.name}.")
    else:
        for problems in form.errors.values():
            for problem in problems:
                messages.error(request, f"Quota not saved: {problem}")
    return redirect("portal:client-detail", org_id=member.organization_id, client_id=client.id)
