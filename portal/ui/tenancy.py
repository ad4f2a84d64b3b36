"""Tenancy for portal views: one decorator resolves ``org_id`` to the user's membership.

A user who is not a member gets 404 (another organization's objects do not exist for them);
a member whose role does not allow the action gets 403. The organization last opened is
remembered in the session so that ``/`` returns to it (switching needs nothing else).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from clients.selectors import membership_get

CURRENT_ORGANIZATION = "portal_organization_id"

ViewFunc = Callable[..., HttpResponse]


def member_view(*, manage_clients: bool = False, manage_members: bool = False) -> Callable:
    """Replace the ``org_id`` URL argument with the current user's ``Membership`` (or 404/403)."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, org_id: str, *args: Any, **kwargs: Any) -> HttpResponse:
            member = membership_get(request.user, org_id)
            if manage_clients and not member.can_manage_clients:
                raise PermissionDenied("your role in this organization is read-only")
            if manage_members and not member.can_manage_members:
                raise PermissionDenied("only an owner manages members")
            request.session[CURRENT_ORGANIZATION] = member.organization_id
            return view(request, member, *args, **kwargs)

        return wrapper

    return decorator
