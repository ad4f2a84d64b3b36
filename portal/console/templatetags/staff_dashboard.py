"""``{% staff_dashboard as dash %}``: the dashboard's figures, for staff who may see clients."""

from __future__ import annotations

from django import template

from portal.console.dashboard import Dashboard, dashboard

register = template.Library()


@register.simple_tag(takes_context=True)
def staff_dashboard(context: template.Context) -> Dashboard | None:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("clients.view_apiclient"):
        return None
    return dashboard()
