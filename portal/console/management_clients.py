"""Management clients: the clients of the management API (``skc_…``), in no organization.

They are listed, made and renamed here like API clients (``BaseClientAdmin``: the first secret
shown once, secrets inline, revoking them all); their scope and audience are the management
API's, set by the service, and only shown here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from clients import services
from clients.models import ApiClient, ManagementClient
from portal.console.base import copy_fields, staff_actor
from portal.console.clients import ActiveSecretsFilter, BaseClientAdmin
from portal.lib.once import nonce_of


class ManagementClientForm(forms.ModelForm):
    nonce = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = ManagementClient
        fields = ("name", "description")


@admin.register(ManagementClient)
class ManagementClientAdmin(BaseClientAdmin):
    """Clients of the management API (``skc_…``), in no organization."""

    form = ManagementClientForm
    list_display = ("name", "id", "active_secret_count", "last_used_time", "create_time")
    list_filter = (ActiveSecretsFilter, "create_time")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["name", "description", "nonce"]
        return ["id", "name", "description", "scope_list", "audience_list", "create_time"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("id", "scope_list", "audience_list", "create_time") if obj else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(organization__isnull=True)

    def save_model(
        self, request: HttpRequest, obj: ManagementClient, form: Any, change: bool
    ) -> None:
        actor = staff_actor(request)
        data = form.cleaned_data
        if change:
            current = ApiClient.objects.get(pk=obj.pk)
            saved = services.client_update(
                actor=actor, client=current, name=data["name"], description=data["description"]
            )
        else:
            saved, plain = services.management_client_create(
                actor=actor,
                name=data["name"],
                description=data["description"],
                form_token=nonce_of(request),
            )
            request._secret_once = plain
        copy_fields(obj, saved)
