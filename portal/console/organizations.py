"""Organizations: their list and page (members inline, allowed APIs), and the bulk action that
restricts them to some APIs of the catalog."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from clients import services
from clients.conf import client_settings
from clients.models import ApiResource, Organization
from portal.console.base import ServiceAdmin, confirm_action, copy_fields, staff_actor
from portal.console.memberships import OrganizationMembershipInline, save_memberships


class RestrictApisForm(forms.Form):
    restrict = forms.BooleanField(
        required=False,
        initial=True,
        label="Restrict to the APIs below",
        help_text="Unticked: lift the restriction (every API of the catalog may be granted).",
    )
    apis = forms.ModelMultipleChoiceField(
        queryset=ApiResource.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Allowed APIs",
    )


class OrganizationForm(forms.ModelForm):
    """The organization's page; an empty quota mode means enforce."""

    class Meta:
        model = Organization
        fields = (
            "display_name",
            "external_id",
            "restrict_apis",
            "allowed_apis",
            "token_quota_per_hour",
            "token_quota_per_day",
            "token_quota_mode",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
        return data


def _quota(data: dict[str, Any]) -> dict[str, Any] | None:
    if data.get("token_quota_per_hour") is None and data.get("token_quota_per_day") is None:
        return None
    return {
        "per_hour": data.get("token_quota_per_hour"),
        "per_day": data.get("token_quota_per_day"),
        "mode": data.get("token_quota_mode") or "enforce",
    }


@admin.register(Organization)
class OrganizationAdmin(ServiceAdmin):
    form = OrganizationForm
    list_display = (
        "display_name",
        "id",
        "external_id",
        "client_count",
        "member_count",
        "restrict_apis",
        "on_leak",
        "create_time",
    )
    list_filter = ("restrict_apis", "on_leak", "create_time")
    search_fields = ("display_name", "id", "external_id")
    date_hierarchy = "create_time"
    fields = (
        "id",
        "display_name",
        "external_id",
        "restrict_apis",
        "allowed_apis",
        "on_leak",
        "secret_max_lifetime_days",
        "token_quota_per_hour",
        "token_quota_per_day",
        "token_quota_mode",
        "clients_link",
        "create_time",
        "update_time",
    )
    readonly_fields = ("id", "clients_link", "create_time", "update_time")
    filter_horizontal = ("allowed_apis",)
    inlines = (OrganizationMembershipInline,)
    actions = ("restrict_to_apis", "delete_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_clients=Count("clients", distinct=True),
                n_members=Count("memberships", distinct=True),
            )
        )

    @admin.display(description="clients", ordering="n_clients")
    def client_count(self, obj: Organization) -> int:
        return obj.n_clients

    @admin.display(description="members", ordering="n_members")
    def member_count(self, obj: Organization) -> int:
        return obj.n_members

    @admin.display(description="API clients")
    def clients_link(self, obj: Organization) -> str:
        if not obj.pk or obj._state.adding:
            return "-"
        url = reverse("admin:clients_apiclient_changelist") + f"?organization__id__exact={obj.pk}"
        return format_html('<a href="{}">{} client(s)</a>', url, obj.clients.count())

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        cap = client_settings.SECRET_MAX_LIFETIME_DAYS_CAP
        field = form.base_fields.get("secret_max_lifetime_days")
        if field is not None:
            field.validators = [v for v in field.validators if not isinstance(v, MinValueValidator)]
            field.validators.append(MinValueValidator(1))
            field.help_text = "New secrets expire after at most this many days; empty: no limit"
            if cap is not None:
                field.validators.append(MaxValueValidator(cap))
                field.help_text += f" (the provider's cap: {cap} days)"
        return form

    def save_model(self, request: HttpRequest, obj: Organization, form: Any, change: bool) -> None:
        actor = staff_actor(request)
        data = form.cleaned_data
        if change:
            current = Organization.objects.get(pk=obj.pk)
            saved = services.organization_update(
                actor=actor,
                organization=current,
                display_name=data["display_name"],
                external_id=data.get("external_id") or None,
                on_leak=data.get("on_leak") or Organization.OnLeak.REVOKE,
                secret_max_lifetime_days=data.get("secret_max_lifetime_days"),
                token_quota=_quota(data),
            )
        else:
            saved = services.organization_create(
                actor=actor,
                display_name=data["display_name"],
                external_id=data.get("external_id") or None,
            )
            on_leak = data.get("on_leak") or Organization.OnLeak.REVOKE
            days = data.get("secret_max_lifetime_days")
            quota_given = data.get("token_quota_per_hour") or data.get("token_quota_per_day")
            if on_leak != saved.on_leak or days is not None or quota_given:
                saved = services.organization_update(
                    actor=actor,
                    organization=saved,
                    on_leak=on_leak,
                    secret_max_lifetime_days=days,
                    token_quota=_quota(data) if quota_given else ...,
                )
        copy_fields(obj, saved)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Not form.save_m2m(): the allowed APIs change through organization_restrict_apis.
        organization = form.instance
        data = form.cleaned_data
        touched = {"restrict_apis", "allowed_apis"} & set(form.changed_data)
        if touched or (not change and data.get("restrict_apis")):
            services.organization_restrict_apis(
                actor=staff_actor(request),
                organization=organization,
                apis=list(data.get("allowed_apis") or []) if data.get("restrict_apis") else None,
            )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        save_memberships(request, formset)

    def delete_model(self, request: HttpRequest, obj: Organization) -> None:
        services.organization_delete(actor=staff_actor(request), organization=obj)

    @admin.action(
        description="Restrict selected organizations to some APIs", permissions=["change"]
    )
    def restrict_to_apis(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("post") == "yes":
            form = RestrictApisForm(request.POST)
            if form.is_valid():
                apis = list(form.cleaned_data["apis"]) if form.cleaned_data["restrict"] else None
                actor = staff_actor(request)
                for organization in queryset:
                    services.organization_restrict_apis(
                        actor=actor, organization=organization, apis=apis
                    )
                self.message_user(
                    request, f"API access changed for {queryset.count()} organization(s)."
                )
                return None
        else:
            form = RestrictApisForm()
        return confirm_action(
            self,
            request,
            queryset,
            action="restrict_to_apis",
            title="Restrict organizations to some APIs",
            question="Customers of these organizations may then grant only the APIs you pick.",
            form=form,
            button="Apply",
        )
