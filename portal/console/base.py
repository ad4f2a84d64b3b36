"""What every page of the staff console shares: the site's titles, the staff actor, the base
admins (through services, or read-only), the two intermediate pages (an action's confirmation,
a new secret shown once) and how a JSON value is shown.

Every change made in the console goes through ``clients.services`` (one door per change), with
the staff user as the audit event's actor: the subject modules' ``save_model``/``delete_model``/
``save_formset`` hooks call services instead of saving models, and ``ServiceAdmin`` turns a
service's refusal (``ValidationError`` raised after the form was valid, e.g. removing an
organization's last owner) into an error message, the whole request rolled back.

Secrets are shown as their suffix, status and times only; a plain secret appears once, in the
answer to the POST that created it (``secret_once``), and never in a message, URL or session.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from clients.models import ApiClient
from clients.services import Actor
from portal.lib.net import client_ip

admin.site.site_header = "M2M authorization server: staff console"
admin.site.site_title = "Staff console"
admin.site.index_title = "Dashboard"
# The index shows the dashboard above the app list (templates/admin/staff_index.html).
admin.site.index_template = "admin/staff_index.html"


def staff_actor(request: HttpRequest) -> Actor:
    """The signed-in staff user as the actor of an audit event."""
    return Actor.for_user(request.user, ip=client_ip(request))


def copy_fields(target: Any, source: Any) -> None:
    """Make the admin's unsaved ``target`` the object a service saved, so the admin goes on."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


def refusal(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """A service's refusal as an error message on the page that asked (the change rolled back)."""
    messages.error(request, "; ".join(exc.messages))
    return HttpResponseRedirect(request.get_full_path())


class ServiceAdmin(admin.ModelAdmin):
    """A model admin whose changes go through services; refusals become messages."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:  # raised by a service; the admin's transaction rolled back
            return refusal(request, exc)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            return refusal(request, exc)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        try:
            with transaction.atomic():
                return super().changelist_view(request, extra_context)
        except ValidationError as exc:
            return refusal(request, exc)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Bulk delete, one service call per object (each audited).
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnly:
    """Never added, changed or deleted here: for a model admin or an inline."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    """Viewable by staff with the view permission; never added, changed or deleted here."""


def json_block(value: Any, *, sort_keys: bool = False) -> str:
    """A JSON value, indented, on a detail page."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=sort_keys))


def confirm_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    question: str,
    form: forms.Form | None = None,
    button: str = "Yes, I'm sure",
) -> TemplateResponse:
    """The intermediate page of an action: the objects, an optional form, and a POST button."""
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "objects": list(queryset),
        "form": form,
        "action": action,
        "button": button,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "opts": opts,
        "app_label": opts.app_label,
        "media": modeladmin.media + (form.media if form else forms.Media()),
    }
    return TemplateResponse(request, "admin/clients/action_confirm.html", context)


def secret_once(
    modeladmin: admin.ModelAdmin, request: HttpRequest, client: ApiClient, plain: str
) -> HttpResponse:
    """The only response that ever holds a plain secret: never cached, never stored."""
    opts = modeladmin.model._meta
    change_url = reverse(
        f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(client.pk)]
    )
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{client.name} is registered",
        "client": client,
        "plain_secret": plain,
        "change_url": change_url,
        "opts": opts,
        "app_label": opts.app_label,
    }
    response = TemplateResponse(request, "admin/clients/secret_once.html", context)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response
