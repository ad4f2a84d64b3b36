"""Limits on people's log-ins and password resets: one set of counters for every door.

The portal's ``/login`` and the staff console's ``/admin/login/`` both authenticate through
``LimitedModelBackend``, so an account locked at one door is locked at the other, and a view
that forgets to check still cannot try passwords past the limit. The views add the polite part
(``locked_response``: 429, ``Retry-After`` and a message) before any password is checked.

Every call into ``oauth.ratelimit`` for people sits in this module, so a change of the limiter's
interface is made here once. Each attempt reserves its slot before the work in one atomic step
(``ratelimit.acquire``), so parallel attempts cannot slip past a limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from clients.models import email_canonical
from oauth import ratelimit
from portal.lib.net import client_ip


def _address(request: HttpRequest | None) -> str | None:
    return client_ip(request) if request is not None else None


# --- Log-in failures -----------------------------------------------------------------------------


def login_lockout(username: str, request: HttpRequest | None) -> ratelimit.RateLimited | None:
    """Why ``username`` may not try a password from this request's address now, or None."""
    try:
        ratelimit.check(ratelimit.login_failure_counters(username, _address(request)))
    except ratelimit.RateLimited as limited:
        return limited
    return None


def stored_username(username: str) -> str:
    """The account ``username`` names, whatever its capitalisation.

    Portal accounts are e-mail addresses stored in lower case (``email_canonical``), so any
    capitalisation logs in and counts against the same limits. A staff account created by hand
    may keep capitals: the one account that matches regardless of case is the one meant; when
    two differ only by case (left so by the e-mail migration), only the exact name matches.
    """
    matches = list(
        get_user_model()
        ._default_manager.filter(username__iexact=username.strip())
        .values_list("username", flat=True)[:2]
    )
    return matches[0] if len(matches) == 1 else username


class LimitedModelBackend(ModelBackend):
    """Django's model backend behind the log-in limits (``AUTHENTICATION_BACKENDS``).

    Each attempt reserves a slot on the account's and the address's limits before the password
    is checked, in one atomic step (``ratelimit.acquire``), so parallel guesses cannot slip past
    the limit; a right password gives the slot back. A locked account or address is refused
    before its password is checked, even a right one (``PermissionDenied`` stops
    ``authenticate``).
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            reservation = ratelimit.acquire(
                ratelimit.login_failure_counters(email_canonical(username), _address(request))
            )
        except ratelimit.RateLimited as limited:
            if request is not None:  # for the view's 429 page (``locked_response``)
                request.login_refusal = limited  # type: ignore[attr-defined]
            raise PermissionDenied("too many failed log-in attempts") from None
        user = super().authenticate(
            request, username=stored_username(username), password=password, **kwargs
        )
        if user is not None:
            ratelimit.release(reservation)
        return user


def locked_response(
    request: HttpRequest,
    *,
    form_class: type[Form],
    template_name: str,
    context: dict[str, Any],
    limited: ratelimit.RateLimited | None = None,
) -> HttpResponse | None:
    """The log-in page with a lockout message (429, ``Retry-After``) when the username posted
    is locked at this address (``limited``: already known to be); None when it may try."""
    username = request.POST.get("username", "")
    limited = limited or login_lockout(email_canonical(username), request)
    if limited is None:
        return None
    message = f"Too many failed log-in attempts. Try again in {limited.retry_after} seconds."
    form = form_class(request, initial={"username": username[:150]})
    form.cleaned_data = {}  # an unbound form, to carry the message as its error
    form.add_error(None, message)
    page = {**context, "form": form, "lockout": message}
    response = TemplateResponse(request, template_name, page, status=429)
    response["Retry-After"] = str(limited.retry_after)
    return response


def limited_login(
    request: HttpRequest,
    log_in: Callable[[], HttpResponse],
    *,
    form_class: type[Form],
    template_name: str,
    context: Callable[[], dict[str, Any]],
) -> HttpResponse:
    """Answer a log-in POST through ``log_in`` (the view's own), or 429 when it is locked.

    Asked twice: before, so that a locked account gets its page without a form being checked,
    and after, because the backend's reservation is what counts: a guess that passed the first
    look while parallel guesses used up the limit is refused by the backend, and must get the
    429 page too rather than "wrong password"."""
    page = {"form_class": form_class, "template_name": template_name}
    refused = locked_response(request, context=context(), **page)
    if refused is not None:
        return refused
    response = log_in()
    limited = getattr(request, "login_refusal", None)
    if limited is not None:
        return locked_response(request, context=context(), limited=limited, **page) or response
    return response


class LimitedLoginView(auth_views.LoginView):
    """Django's log-in view that answers a locked account or address with 429."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        return limited_login(
            request,
            lambda: super(LimitedLoginView, self).post(request, *args, **kwargs),
            form_class=self.get_form_class(),
            template_name=self.template_name,
            context=self.get_context_data,
        )


# --- Password-reset requests ---------------------------------------------------------------------


def password_reset_counters(email: str, request: HttpRequest | None) -> list[ratelimit.Counter]:
    """``RATE_LIMIT_PASSWORD_RESET`` per target address and per requesting address."""
    rate = ratelimit.rate_setting("RATE_LIMIT_PASSWORD_RESET")
    counters = [ratelimit.Counter("reset-email", email.strip().lower()[:256], rate)]
    address = _address(request)
    if address:
        counters.append(ratelimit.Counter("reset-ip", address, rate))
    return counters


def password_reset_allowed(email: str, request: HttpRequest) -> ratelimit.RateLimited | None:
    """Count one reset request; why it is refused, or None. Counted whether or not an account
    uses ``email``, so the limit says nothing about who has one."""
    try:
        ratelimit.acquire(password_reset_counters(email, request))
    except ratelimit.RateLimited as limited:
        return limited
    return None
