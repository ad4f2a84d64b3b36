"""Keys and revoked tokens in the staff console: the server's signing keys (public facts only,
rotation, withdrawal of a leaked key), the public keys clients registered (removal), and the
revoked access tokens (read-only).

The encrypted private key is excluded from every form, list and detail page, and not even
read from the database here. Keys are never added, edited or deleted by hand: a rotation
(``keys.signing_key_rotate``, the same service as the ``rotate_signing_key`` command) makes
a new key current, and retired keys are pruned once no token they signed can be valid.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from clients.models import ClientKey
from clients.services import client_key_delete
from oauth import keys
from oauth.models import RevokedToken, SigningKey
from portal.console.base import ReadOnlyAdmin, confirm_action, json_block, staff_actor


class RotateForm(forms.Form):
    algorithm = forms.ChoiceField(
        choices=[("", "The configured algorithm (OAUTH_SIGNING_ALG)")]
        + [(alg, alg) for alg in keys.SUPPORTED_ALGORITHMS],
        required=False,
    )


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    list_display = (
        "kid",
        "algorithm",
        "create_time",
        "is_current",
        "retire_time",
        "unpublish_time",
    )
    list_filter = ("algorithm", "create_time")
    search_fields = ("kid",)
    exclude = ("private_key_encrypted",)
    fields = (
        "kid",
        "algorithm",
        "create_time",
        "is_current",
        "retire_time",
        "unpublish_time",
        "public_jwk_pretty",
    )
    readonly_fields = fields
    actions = ["withdraw_keys"]
    change_list_template = "admin/oauth/signingkey/change_list.html"

    def get_actions(self, request: HttpRequest) -> dict:
        # ReadOnlyAdmin denies change; withdrawing is the audited incident action.
        actions = super().get_actions(request)
        if not self.has_rotate_permission(request):
            actions.pop("withdraw_keys", None)
        return actions

    @admin.action(description="Withdraw the selected keys now (a leaked key)")
    def withdraw_keys(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        if request.POST.get("post") == "yes":
            actor = staff_actor(request)
            for key in queryset:
                replacement = keys.signing_key_withdraw(actor=actor, key=key)
                note = f"; {replacement.kid} now signs" if replacement else ""
                self.message_user(request, f"Withdrew {key.kid}{note}.", messages.WARNING)
            return None
        return confirm_action(
            self,
            request,
            queryset,
            action="withdraw_keys",
            title="Withdraw signing keys",
            question=(
                "These keys leave the JWKS now (a current key is replaced first). Every token "
                "they signed fails verification once verifiers refresh their keys; clients "
                "simply fetch new tokens."
            ),
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("private_key_encrypted")

    @admin.display(description="current", boolean=True)
    def is_current(self, obj: SigningKey) -> bool:
        return obj.is_current

    @admin.display(description="public key (JWK)")
    def public_jwk_pretty(self, obj: SigningKey) -> str:
        return json_block(obj.public_jwk)

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm("oauth.change_signingkey")

    def get_urls(self) -> list:
        rotate = self.admin_site.admin_view(self.rotate_view)
        return [path("rotate/", rotate, name="oauth_signingkey_rotate"), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        extra = {"can_rotate": self.has_rotate_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def rotate_view(self, request: HttpRequest) -> HttpResponse:
        """GET: confirm; POST: make a new key current (audited with the staff user)."""
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        form = RotateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            key = keys.signing_key_rotate(
                actor=staff_actor(request), algorithm=form.cleaned_data["algorithm"] or None
            )
            messages.success(
                request,
                f"New current signing key {key.kid} ({key.algorithm}). Older keys stay published "
                "until every token they signed has expired.",
            )
            return HttpResponseRedirect(reverse("admin:oauth_signingkey_changelist"))
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": "Rotate the signing key",
            "form": form,
            "current": keys.current_signing_key(),
            "opts": opts,
            "app_label": opts.app_label,
        }
        return TemplateResponse(request, "admin/oauth/signingkey/rotate.html", context)


@admin.register(ClientKey)
class ClientKeyAdmin(ReadOnlyAdmin):
    """Public keys clients registered for private_key_jwt; removed through the service."""

    list_display = ("id", "kid", "kty", "alg", "client", "create_time")
    list_filter = ("kty", "alg", "create_time")
    search_fields = ("id", "kid", "client__id", "client__name", "client__organization__id")
    list_select_related = ("client",)
    fields = ("id", "client", "kid", "kty", "alg", "create_time", "jwk_pretty")
    readonly_fields = fields
    actions = ["remove_keys"]

    @admin.display(description="public key (JWK)")
    def jwk_pretty(self, obj: ClientKey) -> str:
        return json_block(obj.jwk)

    def get_actions(self, request: HttpRequest) -> dict:
        # ReadOnlyAdmin denies delete; this action is the audited way to remove a key.
        actions = super().get_actions(request)
        if not request.user.has_perm("clients.delete_clientkey"):
            actions.pop("remove_keys", None)
        return actions

    @admin.action(description="Remove the selected keys (assertions signed with them fail at once)")
    def remove_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not request.user.has_perm("clients.delete_clientkey"):
            raise PermissionDenied
        actor = staff_actor(request)
        count = 0
        for key in queryset:
            client_key_delete(actor=actor, key=key)
            count += 1
        self.message_user(request, f"Removed {count} key(s).", messages.SUCCESS)


@admin.register(RevokedToken)
class RevokedTokenAdmin(ReadOnlyAdmin):
    """Revoked access tokens, remembered until they would have expired (then purged)."""

    list_display = ("jti", "client_id", "revoke_time", "expire_time")
    list_filter = ("revoke_time",)
    search_fields = ("jti", "client_id")
    fields = list_display
    readonly_fields = fields
    actions = None
