"""Accounts: sign-up with a confirmation link, log-in with lockout, password reset, and
joining an organization by invitation.

These pages come before any membership, so they take no ``org_id``. Every address handed to a
service or a rate limit comes from ``portal.lib.net.client_ip``, which knows the trusted proxies:
the per-address login limit has to count each user's address, not the load balancer's.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clients import selectors, services
from clients.models import Invitation, invitation_state, signup_from_token
from oauth import logins
from portal.lib.net import client_ip
from portal.ui import forms
from portal.ui.tenancy import CURRENT_ORGANIZATION


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """``/``: for a visitor, what the portal is for and the way in (sign up or log in); for a
    member, the organization opened last, or the first one."""
    if not request.user.is_authenticated:
        context = {"signup_enabled": settings.PORTAL_SIGNUP_ENABLED}
        return render(request, "portal/landing.html", context)
    memberships = selectors.memberships_of(request.user)
    current = request.session.get(CURRENT_ORGANIZATION)
    chosen = memberships.filter(organization_id=current).first() or memberships.first()
    if chosen is None:
        return render(request, "portal/no_organization.html")
    return redirect("portal:client-list", org_id=chosen.organization_id)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Log out (a POST, so no link or image can do it) and say so on the landing page."""
    auth_logout(request)
    messages.info(request, "You are logged out.")
    return redirect("portal:home")


def _welcome(request: HttpRequest, user: Any, organization_id: str, message: str) -> HttpResponse:
    """Log a new account in and open its organization (sign-up and joining by invitation)."""
    login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    messages.success(request, message)
    return redirect("portal:client-list", org_id=organization_id)


def _signup_enabled(request: HttpRequest) -> None:
    if not settings.PORTAL_SIGNUP_ENABLED:
        raise Http404("sign-up is turned off")


@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Sign up: an account that opens once its address is confirmed by the link we mail.

    The answer is "check your e-mail" whether or not the address has an account already (that
    person gets a mail saying so instead), so this page tells nobody who has an account.
    """
    _signup_enabled(request)
    if request.user.is_authenticated:
        return redirect("portal:home")
    form = forms.SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.account_signup(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            organization_name=form.cleaned_data["organization_name"],
            ip=client_ip(request),
        )
        return redirect("portal:signup-sent")
    status = 400 if form.errors else 200
    return render(request, "portal/signup.html", {"form": form}, status=status)


@require_GET
def signup_sent(request: HttpRequest) -> HttpResponse:
    _signup_enabled(request)
    return render(request, "portal/signup_sent.html")


@require_http_methods(["GET", "POST"])
def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link of the confirmation mail: a page with one button (mail scanners that open
    links must not open accounts), whose POST opens the account and its organization."""
    _signup_enabled(request)
    pending = signup_from_token(token)
    if pending is None:
        raise Http404("this link is invalid, expired or already used")
    user, organization_name = pending
    if request.method == "GET":
        context = {"email": user.email, "organization_name": organization_name, "token": token}
        return render(request, "portal/signup_confirm.html", context)
    try:
        user, organization, _ = services.account_signup_confirm(
            user=user, organization_name=organization_name, ip=client_ip(request)
        )
    except ValidationError as exc:
        raise Http404(" ".join(exc.messages)) from exc
    return _welcome(
        request, user, organization.id, f"Welcome! {organization.display_name} is ready."
    )


# --- Invitations ---------------------------------------------------------------------------------


class InvitationClosed(Exception):
    """The link names no open invitation; ``state`` says why (``invitation_state``)."""

    def __init__(self, state: str, invitation: Invitation | None) -> None:
        super().__init__(state)
        self.state, self.invitation = state, invitation


def _open_invitation(token: str) -> Invitation:
    state, invitation = invitation_state(token)
    if state != "open" or invitation is None:
        raise InvitationClosed(state, invitation)
    return invitation


def _closed_page(request: HttpRequest, closed: InvitationClosed) -> HttpResponse:
    """A page of its own for a link that no longer works: what happened and what to do. 404 for
    a forged link, 410 Gone for one that worked once."""
    status = 404 if closed.state == "invalid" else 410
    context = {"state": closed.state, "invitation": closed.invitation}
    return render(request, "portal/invitation_closed.html", context, status=status)


def invitation_link(view: Any) -> Any:
    """For the views of an invitation link: a closed link gets its page, not a bare 404."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, token: str) -> HttpResponse:
        try:
            return view(request, token)
        except InvitationClosed as closed:
            return _closed_page(request, closed)

    return wrapper


@require_GET
@invitation_link
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The invitation page: join with the current account, or set a password for a new one."""
    invitation = _open_invitation(token)
    has_account = get_user_model().objects.filter(username__iexact=invitation.email).exists()
    form = forms.InvitationSignupForm(email=invitation.email)
    context = {"invitation": invitation, "token": token, "has_account": has_account, "form": form}
    return render(request, "portal/invitation.html", context)


@require_POST
@login_required
@invitation_link
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = _open_invitation(token)
    try:
        services.invitation_accept(invitation=invitation, user=request.user, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:invitation", token=token)
    messages.success(request, f"You joined {invitation.organization.display_name}.")
    return redirect("portal:client-list", org_id=invitation.organization_id)


@sensitive_post_parameters("password1", "password2")
@require_POST
@invitation_link
def invitation_register(request: HttpRequest, token: str) -> HttpResponse:
    """A new account for the invited email, joined to the organization."""
    invitation = _open_invitation(token)
    form = forms.InvitationSignupForm(request.POST, email=invitation.email)
    if form.is_valid():
        try:
            user, _ = services.invitation_accept_with_signup(
                invitation=invitation,
                password=form.cleaned_data["password1"],
                ip=client_ip(request),
            )
        except ValidationError as exc:
            forms.add_service_errors(form, exc)
        else:
            welcome = f"Welcome to {invitation.organization.display_name}."
            return _welcome(request, user, invitation.organization_id, welcome)
    context = {"invitation": invitation, "token": token, "has_account": False, "form": form}
    return render(request, "portal/invitation.html", context, status=400)


# --- Log-in and password reset, limited (oauth.logins) --------------------------------------------


class LoginView(logins.LimitedLoginView):
    """The portal's log-in: failures counted per account and per address, shared with the staff
    console's; past ``RATE_LIMIT_LOGIN_FAILURES`` even a right password gets 429 until the
    window closes."""

    template_name = "portal/login.html"
    authentication_form = forms.LoginForm
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a reset link: the same answer and the same work whether or not an account uses
    the address (a task is always queued; the worker decides whether to write). Limited per
    target address and per requesting address (``RATE_LIMIT_PASSWORD_RESET``)."""

    template_name = "portal/password_reset.html"
    form_class = forms.EmailPasswordResetForm
    success_url = reverse_lazy("portal:password-reset-done")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        limited = logins.password_reset_allowed(form.cleaned_data["email"], self.request)
        if limited is not None:
            wait = f"Too many reset requests. Try again in {limited.retry_after} seconds."
            form.add_error(None, wait)
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(limited.retry_after)
            return response
        services.password_reset_request(email=form.cleaned_data["email"])
        return redirect(self.success_url)
