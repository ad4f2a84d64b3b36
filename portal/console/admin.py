"""The staff console: organizations, members, clients, secrets, the API catalog, the audit log.

Every change made here goes through ``clients.services`` (one door per change), with the
staff user as the audit event's actor: the ``save_model``/``delete_model``/``delete_queryset``/
``save_formset`` hooks below call services instead of saving models. A service's refusal
(``ValidationError`` raised after the form was valid, e.g. removing an organization's last
owner) rolls the whole request back and comes back as an error message.

Secrets are shown as their suffix, status and times only; a plain secret appears once, in the
answer to the POST that created it (``secret_once``), and never in a message, URL or session.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from clients import services
from clients.models import (
    ApiClient,
    ApiResource,
    ApiScope,
    AuditEvent,
    ClientSecret,
    ManagementClient,
    Membership,
    Organization,
    validate_client_lists,
)
from clients.services import Actor
from oauth.models import TokenStat
from portal.console.dashboard import STALE_DAYS, stale_secrets
from portal.lib.net import client_ip
from portal.lib.once import nonce_issue, nonce_spend, nonce_used

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


def _refusal(request: HttpRequest, exc: ValidationError) -> HttpResponse:
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
            return _refusal(request, exc)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            return _refusal(request, exc)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        try:
            with transaction.atomic():
                return super().changelist_view(request, extra_context)
        except ValidationError as exc:
            return _refusal(request, exc)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Bulk delete, one service call per object (each audited).
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by staff with the view permission; never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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


# --- Filters -------------------------------------------------------------------------------------


class SecretStatusFilter(admin.SimpleListFilter):
    """The effective status: an active secret past its expire_time is EXPIRED."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("ACTIVE", "Active"), ("INACTIVE", "Inactive"), ("EXPIRED", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        expired = Q(expire_time__isnull=False, expire_time__lte=now)
        if self.value() == "ACTIVE":
            return queryset.filter(status=ClientSecret.Status.ACTIVE).exclude(expired)
        if self.value() == "EXPIRED":
            return queryset.filter(expired, status=ClientSecret.Status.ACTIVE)
        if self.value() == "INACTIVE":
            return queryset.filter(status=ClientSecret.Status.INACTIVE)
        return queryset


class StaleSecretFilter(admin.SimpleListFilter):
    title = f"unused for {STALE_DAYS} days"
    parameter_name = "stale"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(stale_secrets())
        if self.value() == "no":
            return queryset.exclude(stale_secrets())
        return queryset


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


# --- Memberships (inline on organizations and users, and their own list) --------------------------


def save_memberships(request: HttpRequest, formset: Any) -> None:
    """Apply a membership formset through the member services."""
    actor = staff_actor(request)
    formset.save(commit=False)  # computes new/changed/deleted objects, writes nothing
    for membership in formset.deleted_objects:
        services.member_remove(actor=actor, membership=membership)
    for membership, changed in formset.changed_objects:
        if set(changed) - {"role"}:
            raise ValidationError(
                "a membership's user and organization cannot change; remove it and add another"
            )
        services.member_role_change(actor=actor, membership=membership, role=membership.role)
    for membership in formset.new_objects:
        services.member_add(
            actor=actor,
            user=membership.user,
            organization=membership.organization,
            role=membership.role,
        )


class OrganizationMembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role", "create_time")
    readonly_fields = ("create_time",)
    autocomplete_fields = ("user",)
    extra = 0
    verbose_name = "member"


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fields = ("organization", "role", "create_time")
    readonly_fields = ("create_time",)
    autocomplete_fields = ("organization",)
    extra = 0
    verbose_name = "organization membership"


@admin.register(Membership)
class MembershipAdmin(ServiceAdmin):
    list_display = ("user", "organization", "role", "create_time")
    list_filter = ("role", "organization", "create_time")
    search_fields = (
        "user__username",
        "user__email",
        "organization__display_name",
        "organization__id",
        "organization__external_id",
    )
    list_select_related = ("user", "organization")
    autocomplete_fields = ("user", "organization")
    date_hierarchy = "create_time"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Only the role changes; moving a membership is a remove and an add.
        return ("user", "organization", "create_time") if obj else ("create_time",)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        actor = staff_actor(request)
        if change:
            current = Membership.objects.get(pk=obj.pk)
            copy_fields(
                obj, services.member_role_change(actor=actor, membership=current, role=obj.role)
            )
        else:
            created = services.member_add(
                actor=actor, user=obj.user, organization=obj.organization, role=obj.role
            )
            copy_fields(obj, created)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.member_remove(actor=staff_actor(request), membership=obj)


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    """Django's user admin, with the user's organization memberships (through services)."""

    inlines = (UserMembershipInline,)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Membership:
            save_memberships(request, formset)
        else:
            super().save_formset(request, form, formset, change)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except ValidationError as exc:
            return _refusal(request, exc)


# --- Organizations -------------------------------------------------------------------------------


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


@admin.register(Organization)
class OrganizationAdmin(ServiceAdmin):
    list_display = (
        "display_name",
        "id",
        "external_id",
        "client_count",
        "member_count",
        "restrict_apis",
        "create_time",
    )
    list_filter = ("restrict_apis", "create_time")
    search_fields = ("display_name", "id", "external_id")
    date_hierarchy = "create_time"
    fields = (
        "id",
        "display_name",
        "external_id",
        "restrict_apis",
        "allowed_apis",
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
            )
        else:
            saved = services.organization_create(
                actor=actor,
                display_name=data["display_name"],
                external_id=data.get("external_id") or None,
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


# --- API clients ---------------------------------------------------------------------------------


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
        fields = ("organization", "name", "description", "expiry")

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

    def clean(self) -> dict[str, Any]:
        data = super().clean()
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
        return fields


class ClientSecretInline(admin.TabularInline):
    """Secrets, read-only: suffix, status, times. Never the hash."""

    model = ClientSecret
    fields = ("id", "suffix", "effective_status", "create_time", "last_used_time", "expire_time")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    verbose_name_plural = "secrets (act on them from the secret's page)"

    @admin.display(description="secret")
    def suffix(self, obj: ClientSecret) -> str:
        return f"…{obj.secret_suffix}"

    @admin.display(description="status")
    def effective_status(self, obj: ClientSecret) -> str:
        return obj.effective_status

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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

    @admin.display(description="custom claims")
    def claims_table(self, obj: ApiClient) -> str:
        if not obj.custom_claims:
            return "-"
        return format_html_join(
            "",
            "<div><code>{}</code> = <code>{}</code></div>",
            ((c["key"], c["value"]) for c in obj.custom_claims),
        )

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> tuple:
        # A new client's first secret is shown on the next page; there is no inline to fill.
        return self.inlines if obj is not None else ()

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # A re-sent add form must not create a second client: the nonce remembers it was used.
        return {**super().get_changeform_initial_data(request), "nonce": nonce_issue(request)}

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        if request.method == "POST":
            used = nonce_used(request, request.POST.get("nonce", ""))
            if used:
                messages.info(request, "That form was already sent; the secret is not shown again.")
                return HttpResponseRedirect(used)
        return super().add_view(request, form_url, extra_context)

    def response_add(
        self, request: HttpRequest, obj: ApiClient, post_url_continue: str | None = None
    ) -> HttpResponse:
        plain = request.__dict__.pop("_secret_once", None)
        if plain is None:  # pragma: no cover - every add creates a secret
            return super().response_add(request, obj, post_url_continue)
        opts = self.model._meta
        nonce_spend(
            request,
            request.POST.get("nonce", ""),
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)]),
        )
        return secret_once(self, request, obj, plain)

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
        main = ["organization", "name", "description", "expiry"]
        if obj is not None:
            main = ["id", *main, "create_time", "update_time"]
        return [
            (None, {"fields": main}),
            (
                "Token contents",
                {"fields": ["scopes_text", "audience_text", "claims_text", "nonce"]},
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
            saved = services.client_update(actor=actor, client=current, **form.service_fields())
        else:
            saved, plain = services.client_create(
                actor=actor,
                organization=form.cleaned_data["organization"],
                **form.service_fields(),
            )
            # Handed to response_add in memory, for this response only.
            request._secret_once = plain
        copy_fields(obj, saved)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Secrets are read-only here; nothing else relates to a client."""
        for formset in formsets:
            # Writes nothing (the secrets inline has no editable field, no add, no delete);
            # it only fills the lists the admin's change message reads.
            formset.save(commit=False)


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
                actor=actor, name=data["name"], description=data["description"]
            )
            request._secret_once = plain
        copy_fields(obj, saved)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Secrets are read-only here."""
        for formset in formsets:
            # Writes nothing (the secrets inline has no editable field, no add, no delete);
            # it only fills the lists the admin's change message reads.
            formset.save(commit=False)


# --- Secrets -------------------------------------------------------------------------------------


@admin.register(ClientSecret)
class ClientSecretAdmin(ServiceAdmin):
    """Secrets by suffix and status; deactivate, reactivate or revoke (delete) them here."""

    list_display = (
        "suffix",
        "id",
        "client",
        "organization",
        "effective_status",
        "create_time",
        "last_used_time",
        "expire_time",
    )
    list_filter = (
        SecretStatusFilter,
        StaleSecretFilter,
        ("client__organization", admin.RelatedOnlyFieldListFilter),
        "create_time",
        "last_used_time",
    )
    search_fields = (
        "id",
        "secret_suffix",
        "client__id",
        "client__name",
        "client__organization__display_name",
        "client__organization__id",
        "client__organization__external_id",
    )
    list_select_related = ("client", "client__organization")
    fields = (
        "id",
        "client",
        "organization",
        "suffix",
        "effective_status",
        "create_time",
        "update_time",
        "last_used_time",
        "expire_time",
    )
    readonly_fields = fields
    actions = ("deactivate", "reactivate", "delete_selected")
    date_hierarchy = "create_time"

    @admin.display(description="secret", ordering="secret_suffix")
    def suffix(self, obj: ClientSecret) -> str:
        return f"…{obj.secret_suffix}"

    @admin.display(description="status", ordering="status")
    def effective_status(self, obj: ClientSecret) -> str:
        return obj.effective_status

    @admin.display(description="organization", ordering="client__organization")
    def organization(self, obj: ClientSecret) -> Any:
        return obj.client.organization or "(management client)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a secret is made with its client, or by the portal and the API

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the page is read-only; status changes are the actions below

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("clients.change_clientsecret")

    def delete_model(self, request: HttpRequest, obj: ClientSecret) -> None:
        services.secret_delete(actor=staff_actor(request), secret=obj)

    def _set_status(self, request: HttpRequest, queryset: QuerySet, status: str) -> None:
        actor = staff_actor(request)
        count = 0
        for secret in queryset.select_related("client"):
            services.secret_set_status(actor=actor, secret=secret, status=status)
            count += 1
        self.message_user(request, f"{count} secret(s) now {status.lower()}.")

    @admin.action(description="Deactivate selected secrets", permissions=["revoke"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, ClientSecret.Status.INACTIVE)

    @admin.action(description="Reactivate selected secrets", permissions=["revoke"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, ClientSecret.Status.ACTIVE)


# --- The API catalog -----------------------------------------------------------------------------


class ApiScopeInline(admin.TabularInline):
    model = ApiScope
    fields = ("name", "description")
    extra = 1


@admin.register(ApiResource)
class ApiResourceAdmin(ServiceAdmin):
    list_display = ("name", "audience", "scope_names", "organization_count", "create_time")
    search_fields = ("name", "audience", "scopes__name")
    list_filter = ("create_time",)
    fields = ("name", "audience", "description", "create_time")
    readonly_fields = ("create_time",)
    inlines = (ApiScopeInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("scopes")
            .annotate(n_orgs=Count("organizations", distinct=True))
        )

    @admin.display(description="scopes")
    def scope_names(self, obj: ApiResource) -> str:
        return " ".join(scope.name for scope in obj.scopes.all()) or "-"

    @admin.display(description="restricted organizations allowed", ordering="n_orgs")
    def organization_count(self, obj: ApiResource) -> int:
        return obj.n_orgs

    def save_model(self, request: HttpRequest, obj: ApiResource, form: Any, change: bool) -> None:
        actor = staff_actor(request)
        data = form.cleaned_data
        if change:
            saved = services.api_resource_update(
                actor=actor,
                api=ApiResource.objects.get(pk=obj.pk),
                name=data["name"],
                description=data["description"],
                audience=data["audience"],
            )
        else:
            saved = services.api_resource_create(
                actor=actor,
                audience=data["audience"],
                name=data["name"],
                description=data["description"],
            )
        copy_fields(obj, saved)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        actor = staff_actor(request)
        formset.save(commit=False)
        for scope in formset.deleted_objects:
            services.api_scope_delete(actor=actor, scope=scope)
        for scope, _changed in formset.changed_objects:
            services.api_scope_update(
                actor=actor,
                scope=ApiScope.objects.get(pk=scope.pk),
                name=scope.name,
                description=scope.description,
            )
        for scope in formset.new_objects:
            services.api_scope_add(
                actor=actor, api=form.instance, name=scope.name, description=scope.description
            )

    def delete_model(self, request: HttpRequest, obj: ApiResource) -> None:
        services.api_resource_delete(actor=staff_actor(request), api=obj)


# --- The audit log and token statistics (read-only) ----------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit log: never added, changed or deleted, not even by a superuser."""

    list_display = (
        "time",
        "actor_display",
        "actor_type",
        "action",
        "target_type",
        "target_id",
        "organization_id",
        "client_id",
        "source_ip",
    )
    list_filter = ("action", "actor_type", "target_type", "time")
    search_fields = ("actor_display", "actor_id", "target_id", "organization_id", "client_id")
    date_hierarchy = "time"
    fields = (
        "time",
        "actor_type",
        "actor_id",
        "actor_display",
        "source_ip",
        "action",
        "target_type",
        "target_id",
        "organization_id",
        "client_id",
        "details_pretty",
    )
    readonly_fields = fields
    actions = None

    @admin.display(description="details")
    def details_pretty(self, obj: AuditEvent) -> str:
        import json

        return format_html("<pre>{}</pre>", json.dumps(obj.details, indent=2, sort_keys=True))


@admin.register(TokenStat)
class TokenStatAdmin(ReadOnlyAdmin):
    list_display = ("hour", "issued", "failed")
    list_filter = ("hour",)
    date_hierarchy = "hour"
    actions = None


# The signing keys' pages (they import this module's base classes).
from portal.console import keys  # noqa: E402, F401
