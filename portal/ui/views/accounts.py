"""Accounts: sign-up, log-in with lockout, and joining an organization by invitation.

These pages come before any membership, so they take no ``org_id``. Every address handed to a
service or a rate limit comes from ``portal.lib.net.client_ip``, which knows the trusted proxies:
the per-address login limit has to count each user's address, not the load balancer's.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clients import selectors, services
from clients.models import Invitation, invitation_from_token
from oauth import ratelimit
from portal.lib.net import client_ip
from portal.ui import forms
from portal.ui.tenancy import CURRENT_ORGANIZATION


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """``/``: the organization opened last, or the first one, or the login page."""
    if not request.user.is_authenticated:
        return redirect("portal:login")
    memberships = selectors.memberships_of(request.user)
    current = request.session.get(CURRENT_ORGANIZATION)
    chosen = memberships.filter(organization_id=current).first() or memberships.first()
    if chosen is None:
        return render(request, "portal/no_organization.html")
    return redirect("portal:client-list", org_id=chosen.organization_id)


def _welcome(request: HttpRequest, user: Any, organization_id: str, message: str) -> HttpResponse:
    """Log a new account in and open its organization (sign-up and joining by invitation)."""
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    messages.success(request, message)
    return redirect("portal:client-list", org_id=organization_id)


@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and a new organization owned by it (unless the provider turned it off)."""
    if not settings.PORTAL_SIGNUP_ENABLED:
        raise Http404("sign-up is turned off")
    if request.user.is_authenticated:
        return redirect("portal:home")
    form = forms.SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, organization, _ = services.account_signup(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                organization_name=form.cleaned_data["organization_name"],
                ip=client_ip(request),
            )
        except ValidationError as exc:
            forms.add_service_errors(form, exc)
        else:
            welcome = f"Welcome! {organization.display_name} is ready."
            return _welcome(request, user, organization.id, welcome)
    status = 400 if form.errors else 200
    return render(request, "portal/signup.html", {"form": form}, status=status)


# --- Invitations ---------------------------------------------------------------------------------


def _invitation_or_404(token: str) -> Invitation:
    invitation = invitation_from_token(token)
    if invitation is None:
        raise Http404("this invitation link is invalid, expired or already used")
    return invitation


@require_GET
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The invitation page: join with the current account, or set a password for a new one."""
    invitation = _invitation_or_404(token)
    has_account = get_user_model().objects.filter(username__iexact=invitation.email).exists()
    form = forms.InvitationSignupForm(email=invitation.email)
    context = {"invitation": invitation, "token": token, "has_account": has_account, "form": form}
    return render(request, "portal/invitation.html", context)


@require_POST
@login_required
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = _invitation_or_404(token)
    try:
        services.invitation_accept(invitation=invitation, user=request.user, ip=client_ip(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:invitation", token=token)
    messages.success(request, f"You joined {invitation.organization.display_name}.")
    return redirect("portal:client-list", org_id=invitation.organization_id)


@sensitive_post_parameters("password1", "password2")
@require_POST
def invitation_register(request: HttpRequest, token: str) -> HttpResponse:
    """A new account for the invited email, joined to the organization."""
    invitation = _invitation_or_404(token)
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


# --- Login with lockout --------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Django's login, with failures counted per account and per address (oauth.ratelimit).

    Each attempt reserves a slot on both limits before the password is checked (one atomic
    step, so parallel guesses cannot all slip through) and gives it back when it succeeds.
    Past ``RATE_LIMIT_LOGIN_FAILURES`` the form is refused without checking the password, even
    a right one: 429, ``Retry-After`` and a message that says so.
    """

    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        username = request.POST.get("username", "")
        try:
            reservation = ratelimit.acquire(
                ratelimit.login_failure_counters(username, client_ip(request))
            )
        except ratelimit.RateLimited as limited:
            form = self.get_form_class()(request, initial={"username": username[:150]})
            lockout = (
                f"Too many failed log-in attempts. Try again in {limited.retry_after} seconds."
            )
            response = self.render_to_response(
                self.get_context_data(form=form, lockout=lockout), status=429
            )
            response["Retry-After"] = str(limited.retry_after)
            return response
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:  # logged in: not a failure
            ratelimit.release(reservation)
        return response
