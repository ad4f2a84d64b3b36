"""The staff console's admin site: Django's, with the log-in limits of the portal.

The password itself is checked by ``oauth.logins.LimitedModelBackend`` (so a locked account is
refused here as in the portal, even with the right password); this site only answers a locked
log-in with 429 and a message (``oauth.logins.limited_login``).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse

from oauth import logins


class ConsoleSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.method != "POST":
            return super().login(request, extra_context)
        return logins.limited_login(
            request,
            lambda: super(ConsoleSite, self).login(request, extra_context),
            form_class=self.login_form or AdminAuthenticationForm,
            template_name=self.login_template or "admin/login.html",
            context=lambda: {
                **self.each_context(request),
                "title": "Log in",
                "app_path": request.get_full_path(),
                "username": request.user.get_username(),
                **(extra_context or {}),
            },
        )
