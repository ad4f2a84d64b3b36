"""Signing keys in the staff console: public facts only, and the rotation action.

The encrypted private key is excluded from every form, list and detail page, and not even
read from the database here. Keys are never added, edited or deleted by hand: a rotation
(``keys.signing_key_rotate``, the same service as the ``rotate_signing_key`` command) makes
a new key current, and retired keys are pruned once no token they signed can be valid.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from clients.admin import ReadOnlyAdmin, staff_actor
from oauth import keys
from oauth.models import SigningKey


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
    actions = None
    change_list_template = "admin/oauth/signingkey/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("private_key_encrypted")

    @admin.display(description="current", boolean=True)
    def is_current(self, obj: SigningKey) -> bool:
        return obj.is_current

    @admin.display(description="public key (JWK)")
    def public_jwk_pretty(self, obj: SigningKey) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.public_jwk, indent=2))

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
