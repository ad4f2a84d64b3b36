"""Webhooks in the staff console: every endpoint (the provider's own, which get every event,
and each organization's), their delivery attempts, and the same actions as the portal: add
(the signing secret shown once), edit, disable, delete, rotate the secret, send a test event,
retry a delivery now. Every change goes through ``clients.services`` with the staff actor."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from clients import services, webhooks
from clients.models import WebhookDelivery, WebhookEndpoint
from portal.console.base import ReadOnlyAdmin, ServiceAdmin, copy_fields, staff_actor


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        required=False,
        choices=[(t, t) for t in webhooks.PUBLIC_TYPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("organization", "url", "event_types", "description", "enabled")
        help_texts = {
            "organization": "Empty: the provider's own endpoint, which gets every "
            "organization's events.",
            "url": "https:// on a public address.",
        }


def _secret_page(
    modeladmin: admin.ModelAdmin, request: HttpRequest, endpoint: WebhookEndpoint, secret: str
) -> HttpResponse:
    """The only response that holds a signing secret: never cached, never stored."""
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Signing secret of {endpoint.url}",
        "endpoint": endpoint,
        "signing_secret": secret,
        "change_url": reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(endpoint.pk)]
        ),
        "opts": opts,
        "app_label": opts.app_label,
    }
    response = TemplateResponse(request, "admin/clients/webhook_secret_once.html", context)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


class RecentDeliveries(admin.TabularInline):
    model = WebhookDelivery
    fields = (
        "create_time",
        "event",
        "event_type",
        "attempt",
        "status",
        "response_code",
        "duration_ms",
        "error",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-create_time",)
    show_change_link = True

    @admin.display(description="event type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("event")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "id", "organization", "enabled", "types", "failing_since", "update_time")
    list_filter = ("enabled", ("organization", admin.EmptyFieldListFilter))
    search_fields = ("id", "url", "description", "organization__id", "organization__display_name")
    list_select_related = ("organization",)
    inlines = [RecentDeliveries]
    actions = ["send_test_event", "rotate_secret"]

    @admin.display(description="events")
    def types(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) or "all"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        base = ("id", "disabled_reason", "failing_since", "create_time", "update_time")
        # The owner of an endpoint does not change.
        return ("organization", *base) if obj else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["organization", "url", "event_types", "description", "enabled"]
        if obj is not None:
            fields = ["id", *fields, "disabled_reason", "failing_since", "create_time"]
        return fields

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list:
        return self.inlines if obj is not None else []

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        actor = staff_actor(request)
        data = form.cleaned_data
        fields = {k: data[k] for k in ("url", "event_types", "description", "enabled")}
        if change:
            current = WebhookEndpoint.objects.get(pk=obj.pk)
            saved = services.webhook_endpoint_update(actor=actor, endpoint=current, **fields)
        else:
            saved, secret = services.webhook_endpoint_create(
                actor=actor, organization=data.get("organization"), **fields
            )
            request._secret_once = secret
        copy_fields(obj, saved)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:  # the deliveries inline is read-only
            formset.save(commit=False)

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = request.__dict__.pop("_secret_once", None)
        if secret is None:  # pragma: no cover - every add makes a secret
            return super().response_add(request, obj, post_url_continue)
        return _secret_page(self, request, obj, secret)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        # The delivery log goes with its endpoint; deliveries are never deleted one by one.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed = set(perms_needed) - {WebhookDelivery._meta.verbose_name}
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        services.webhook_endpoint_delete(actor=staff_actor(request), endpoint=obj)

    @admin.action(description="Send a test event to the selected endpoints")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = staff_actor(request)
        count = 0
        for endpoint in queryset:
            services.webhook_endpoint_test(actor=actor, endpoint=endpoint)
            count += 1
        self.message_user(request, f"Sent {count} test event(s).", messages.SUCCESS)

    @admin.action(description="Rotate the signing secret (one endpoint at a time)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        endpoints = list(queryset[:2])
        if len(endpoints) != 1:
            self.message_user(request, "Select exactly one endpoint to rotate.", messages.ERROR)
            return None
        secret = services.webhook_endpoint_rotate_secret(
            actor=staff_actor(request), endpoint=endpoints[0]
        )
        return _secret_page(self, request, endpoints[0], secret)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "create_time",
        "endpoint",
        "event_type",
        "attempt",
        "status",
        "response_code",
        "duration_ms",
    )
    list_filter = ("status", "create_time")
    search_fields = ("id", "event__id", "endpoint__id", "endpoint__url")
    list_select_related = ("endpoint", "event")
    fields = (
        "id",
        "endpoint",
        "event",
        "event_type",
        "attempt",
        "status",
        "response_code",
        "duration_ms",
        "error",
        "create_time",
    )
    readonly_fields = fields
    actions = ["retry_now"]

    @admin.display(description="event type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not request.user.has_perm("clients.change_webhookendpoint"):
            actions.pop("retry_now", None)
        return actions

    @admin.action(description="Retry now (the same webhook-id)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = staff_actor(request)
        count = 0
        for delivery in queryset:
            services.webhook_delivery_retry(actor=actor, delivery=delivery)
            count += 1
        self.message_user(request, f"Delivering {count} event(s) again.", messages.SUCCESS)
