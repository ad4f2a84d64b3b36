"""API clients: their list and page, the form that writes scopes, audiences and claims as
text, and what every client admin shares (``BaseClientAdmin``, used by management clients too):
the secrets inline, revoking all secrets, and the first secret, shown once on the page after
the add form.

A re-sent add form does not create a second client: the form carries a one-time token that
the service claims (``portal.lib.once``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join

from clients import services
from clients.models import ApiClient, ClientSecret, validate_client_lists
from portal.console.base import ServiceAdmin, confirm_action, copy_fields, secret_once, staff_actor
from portal.console.secrets import ClientSecretInline
from portal.lib.once import nonce_issue, nonce_of


class ActiveSecretsFilter(admin.SimpleListFilter):
    title = "active secrets"
    parameter_name = "has_active"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "At least one"), ("no", "None")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(active_secrets__gt=0)
        if self.value() == "no":
            return queryset.filter(active_secrets=0)
        return queryset


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class ClientForm(forms.ModelForm):
    """Scopes, audiences and custom claims as text a person can read and write."""

    scopes_text = forms.CharField(
        label="Scopes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Separated by spaces or new lines, e.g. read:deployments",
    )
    audience_text = forms.CharField(
        label="Audiences",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line, e.g. deployment-api.acmecorp.com",
    )
    claims_text = forms.CharField(
        label="Custom claims",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One key=value per line; they are added to every token of this client.",
    )
    nonce = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = ApiClient
        fields = (
            "organization",
            "name",
            "description",
            "expiry",
            "dpop_bound_access_tokens",
            "token_quota_per_hour",
            "token_quota_per_day",
            "token_quota_mode",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        client = self.instance
        if client.pk and not client._state.adding:
            self.initial.setdefault("scopes_text", " ".join(client.scopes))
            self.initial.setdefault("audience_text", "\n".join(client.audience))
            self.initial.setdefault(
                "claims_text", "\n".join(f"{c['key']}={c['value']}" for c in client.custom_claims)
            )
        if "organization" in self.fields:
            self.fields["organization"].required = True
        if "token_quota_mode" in self.fields:
            self.fields["token_quota_mode"].required = False

    def _update_errors(self, errors: ValidationError) -> None:
        # The model names its quota problems "token_quota" (the API's field); shown here
        # beside the per-hour field.
        error_dict = getattr(errors, "error_dict", None)
        if error_dict and "token_quota" in error_dict:
            error_dict["token_quota_per_hour"] = error_dict.pop("token_quota")
        super()._update_errors(errors)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["token_quota_mode"] = data.get("token_quota_mode") or "enforce"
        claims = []
        for number, line in enumerate(_lines(data.get("claims_text", "")), start=1):
            key, equals, value = line.partition("=")
            if not equals:
                self.add_error("claims_text", f"line {number}: write key=value")
                continue
            claims.append({"key": key.strip(), "value": value.strip()})
        data["scopes"] = (data.get("scopes_text") or "").split()
        data["audience"] = _lines(data.get("audience_text", ""))
        data["custom_claims"] = claims
        form_field = {"scopes": "scopes_text", "audience": "audience_text"}
        for key, problems in validate_client_lists(
            data["scopes"], data["audience"], claims
        ).items():
            base = key.partition("[")[0]
            field = form_field.get(base, "claims_text")
            for problem in problems:
                self.add_error(field, f"{key}: {problem}" if key != base else problem)
        return data

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        fields = {
            name: data[name]
            for name in ("name", "description", "scopes", "audience", "custom_claims")
        }
        fields["expiry"] = data["expiry"]
        fields["dpop_bound_access_tokens"] = data.get("dpop_bound_access_tokens", False)
        return fields

    def token_quota(self) -> dict[str, Any] | None:
        """The quota fields as ``client_update`` takes them (None: no quota)."""
        data = self.cleaned_data
        if data.get("token_quota_per_hour") is None and data.get("token_quota_per_day") is None:
            return None
        return {
            "per_hour": data.get("token_quota_per_hour"),
            "per_day": data.get("token_quota_per_day"),
            "mode": data.get("token_quota_mode") or "enforce",
        }


class BaseClientAdmin(ServiceAdmin):
    """What API clients and management clients share: secrets inline, actions, the first secret."""

    inlines = (ClientSecretInline,)
    actions = ("revoke_all_secrets", "delete_selected")
    search_fields = ("name", "id")
    date_hierarchy = "create_time"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        now = timezone.now()
        usable = Q(secrets__status=ClientSecret.Status.ACTIVE) & (
            Q(secrets__expire_time__isnull=True) | Q(secrets__expire_time__gt=now)
        )
        return (
            super()
            .get_queryset(request)
            .select_related("organization")
            .annotate(
                active_secrets=Count("secrets", filter=usable),
                last_used=Max("secrets__last_used_time"),
            )
        )

    @admin.display(description="active secrets", ordering="active_secrets")
    def active_secret_count(self, obj: ApiClient) -> int:
        return obj.active_secrets

    @admin.display(description="last used", ordering="last_used")
    def last_used_time(self, obj: ApiClient) -> Any:
        return obj.last_used

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiClient) -> str:
        return " ".join(obj.scopes) or "-"

    @admin.display(description="audiences")
    def audience_list(self, obj: ApiClient) -> str:
        return format_html_join(", ", "<code>{}</code>", ((a,) for a in obj.audience)) or "-"

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> tuple:
        # A new client's first secret is shown on the next page; there is no inline to fill.
        return self.inlines if obj is not None else ()

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # A re-sent add form must not create a second client: the service claims its token.
        return {**super().get_changeform_initial_data(request), "nonce": nonce_issue()}

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        try:
            return super().add_view(request, form_url, extra_context)
        except services.AlreadySubmitted as exc:
            # Raised by save_model inside the admin's transaction, which it rolled back.
            messages.info(request, "That form was already sent; the secret is not shown again.")
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(exc.target_id)]
                )
                if exc.target_id
                else reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            )

    def response_add(
        self, request: HttpRequest, obj: ApiClient, post_url_continue: str | None = None
    ) -> HttpResponse:
        plain = request.__dict__.pop("_secret_once", None)
        if plain is None:  # pragma: no cover - every add creates a secret
            return super().response_add(request, obj, post_url_continue)
        return secret_once(self, request, obj, plain)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Secrets are read-only here; nothing else relates to a client."""
        for formset in formsets:
            # Writes nothing (the secrets inline has no editable field, no add, no delete);
            # it only fills the lists the admin's change message reads.
            formset.save(commit=False)

    def delete_model(self, request: HttpRequest, obj: ApiClient) -> None:
        services.client_delete(actor=staff_actor(request), client=obj)

    @admin.action(description="Revoke all secrets of selected clients", permissions=["change"])
    def revoke_all_secrets(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("post") == "yes":
            actor = staff_actor(request)
            revoked = sum(
                services.secrets_revoke_all(actor=actor, client=client) for client in queryset
            )
            self.message_user(request, f"Revoked {revoked} secret(s); they stop working at once.")
            return None
        return confirm_action(
            self,
            request,
            queryset,
            action="revoke_all_secrets",
            title="Revoke all secrets",
            question=(
                "Every secret of these clients is deleted and stops working at once. Tokens "
                "already issued stay valid until they expire."
            ),
        )


@admin.register(ApiClient)
class ApiClientAdmin(BaseClientAdmin):
    form = ClientForm
    list_display = (
        "name",
        "id",
        "organization",
        "scope_list",
        "active_secret_count",
        "last_used_time",
        "create_time",
    )
    list_filter = ("organization", ActiveSecretsFilter, "create_time")
    search_fields = (
        "name",
        "id",
        "organization__display_name",
        "organization__id",
        "organization__external_id",
    )
    autocomplete_fields = ("organization",)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        main = ["organization", "name", "description", "expiry", "dpop_bound_access_tokens"]
        if obj is not None:
            main = ["id", *main, "create_time", "update_time"]
        return [
            (None, {"fields": main}),
            (
                "Token contents",
                {"fields": ["scopes_text", "audience_text", "claims_text", "nonce"]},
            ),
            (
                "Token quota (within the organization's caps; empty: none)",
                {"fields": ["token_quota_per_hour", "token_quota_per_day", "token_quota_mode"]},
            ),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A client never moves to another organization.
        return ("id", "organization", "create_time", "update_time") if obj else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(organization__isnull=False)

    def save_model(self, request: HttpRequest, obj: ApiClient, form: Any, change: bool) -> None:
        actor = staff_actor(request)
        if change:
            current = ApiClient.objects.get(pk=obj.pk)
            saved = services.client_update(
                actor=actor,
                client=current,
                token_quota=form.token_quota(),
                **form.service_fields(),
            )
        else:
            saved, plain = services.client_create(
                actor=actor,
                organization=form.cleaned_data["organization"],
                form_token=nonce_of(request),
                **form.service_fields(),
            )
            # Handed to response_add in memory, for this response only.
            request._secret_once = plain
        copy_fields(obj, saved)
