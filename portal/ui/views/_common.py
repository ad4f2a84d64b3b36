"""What every organization page needs: the acting user for audit events, pagination, the frame."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest

from clients import selectors
from clients.models import Membership
from clients.services import Actor
from portal.lib.net import client_ip


def actor_for(request: HttpRequest) -> Actor:
    """The signed-in user as audit events record them, from the address ``client_ip`` finds."""
    return Actor.for_user(request.user, ip=client_ip(request))


def page_of(request: HttpRequest, items: object, per_page: int) -> object:
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def org_context(request: HttpRequest, member: Membership, **extra: object) -> dict:
    """What every organization page needs: the member, the organization, the switcher."""
    url_name = request.resolver_match.url_name if request.resolver_match else ""
    sections = {
        "audit-log": "audit",
        "catalog": "catalog",
        "usage": "usage",
        "organization-settings": "settings",
        "organization-settings-update": "settings",
    }
    section = sections.get(url_name) or ("members" if "member" in url_name else "clients")
    return {
        "section": section,
        "member": member,
        "organization": member.organization,
        "memberships": selectors.memberships_of(request.user),
        **extra,
    }
