"""Token statistics, read-only: issued and failed token requests per hour (written by oauth)."""

from __future__ import annotations

from django.contrib import admin

from oauth.models import TokenStat
from portal.console.base import ReadOnlyAdmin


@admin.register(TokenStat)
class TokenStatAdmin(ReadOnlyAdmin):
    list_display = ("hour", "issued", "failed")
    list_filter = ("hour",)
    date_hierarchy = "hour"
    actions = None
