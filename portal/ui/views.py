"""The self-service portal: customers manage their organization's API clients in a browser.

Views are small typed functions. Every state change is a POST that calls ``clients.services``;
the organization comes from ``member_view`` (404 for non-members, 403 for a read-only role).
With htmx, a view answers with a fragment of the same template (``template.html#partial``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clients import selectors, services
from clients.models import ApiClient, Membership, invitation_from_token, invitation_token
from clients.services import Actor
from oauth import ratelimit
from portal.lib.net import client_ip
from portal.lib.once import nonce_issue, nonce_spend, nonce_used
from portal.ui import forms
from portal.ui.tenancy import CURRENT_ORGANIZATION, member_view

CLIENTS_PER_PAGE = 20
EVENTS_PER_PAGE = 50


def actor_for(request: HttpRequest) -> Actor:
    return Actor.for_user(request.user, ip=client_ip(request))


def page_of(request: HttpRequest, items: object, per_page: int) -> object:
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def org_context(request: HttpRequest, member: Membership, **extra: object) -> dict:
    """What every organization page needs: the member, the organization, the switcher."""
    url_name = request.resolver_match.url_name if request.resolver_match else ""
    section = (
        "audit" if url_name == "audit-log" else "members" if "member" in url_name else "clients"
    )
    return {
        "section": section,
        "member": member,
        "organization": member.organization,
        "memberships": selectors.memberships_of(request.user),
        **extra,
    }


# --- Accounts ------------------------------------------------------------------------------------


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
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome! {organization.display_name} is ready.")
            return redirect("portal:client-list", org_id=organization.id)
    status = 400 if form.errors else 200
    return render(request, "portal/signup.html", {"form": form}, status=status)


# --- Clients -------------------------------------------------------------------------------------


@require_GET
@member_view()
def client_list(request: HttpRequest, member: Membership) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    clients = page_of(
        request, selectors.client_list(member.organization, search=search), CLIENTS_PER_PAGE
    )
    for client in clients:
        used = [s.last_used_time for s in client.secrets.all() if s.last_used_time]
        client.last_used_time = max(used) if used else None
    context = org_context(request, member, clients=clients, search=search)
    template = "portal/client_list.html"
    if request.htmx and request.htmx.target == "client-table":
        template += "#client-table"
    return render(request, template, context)


def _client_form_context(
    request: HttpRequest, member: Membership, form: forms.ClientForm, **extra: object
) -> dict:
    return org_context(request, member, form=form, nonce=nonce_issue(request), **extra)


def secret_once(
    request: HttpRequest, member: Membership, client: ApiClient, plain: str, created: bool
) -> HttpResponse:
    """The only response that ever holds the plain secret: never cached, never stored."""
    detail_url = reverse(
        "portal:client-detail", kwargs={"org_id": member.organization_id, "client_id": client.id}
    )
    context = org_context(
        request,
        member,
        client=client,
        plain_secret=plain,
        created=created,
        detail_url=detail_url,
        token_url=f"{settings.OAUTH['ISSUER']}/oauth/token",
    )
    response = render(request, "portal/secret_once.html", context)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _replayed(request: HttpRequest) -> HttpResponse | None:
    """A re-sent secret-making form goes to where its first answer led, without the secret."""
    used = nonce_used(request, request.POST.get("nonce", ""))
    if used is None:
        return None
    messages.info(request, "That form was already sent; the secret is not shown again.")
    return HttpResponseRedirect(used)


@require_http_methods(["GET", "POST"])
@member_view(manage_clients=True)
def client_new(request: HttpRequest, member: Membership) -> HttpResponse:
    """The register form; a valid POST creates the client and shows its secret once."""
    catalog = services.catalog_for(member.organization)
    if request.method == "POST":
        if replay := _replayed(request):
            return replay
        form = forms.ClientForm(request.POST, catalog=catalog)
        if form.is_valid():
            fields = form.service_fields()
            try:
                services.catalog_check(
                    organization=member.organization,
                    audience=fields["audience"],
                    scopes=fields["scopes"],
                )
                client, plain = services.client_create(
                    actor=actor_for(request), organization=member.organization, **fields
                )
            except ValidationError as exc:
                forms.add_service_errors(form, exc)
            else:
                nonce_spend(
                    request,
                    request.POST.get("nonce", ""),
                    reverse("portal:client-detail", args=[member.organization_id, client.id]),
                )
                return secret_once(request, member, client, plain, created=True)
        context = _client_form_context(request, member, form)
        return render(request, "portal/client_new.html", context, status=400)
    form = forms.ClientForm(catalog=catalog)
    return render(request, "portal/client_new.html", _client_form_context(request, member, form))


@require_GET
@member_view(manage_clients=True)
def claim_row(request: HttpRequest, member: Membership) -> HttpResponse:
    """One empty custom-claim row, added in place by htmx."""
    return render(request, "portal/client_form.html#claim-row", {"claim": {"key": "", "value": ""}})


def _detail_context(
    request: HttpRequest, member: Membership, client: ApiClient, form: forms.ClientForm | None
) -> dict:
    if form is None:
        form = forms.ClientForm(
            catalog=services.catalog_for(member.organization),
            initial={
                "name": client.name,
                "description": client.description,
                "audience": client.audience,
                "scopes": client.scopes,
                "custom_claims": client.custom_claims,
                "expiry": client.expiry,
            },
        )
    kept_audience, kept_scopes = services.provider_grants(
        organization=member.organization, audience=client.audience, scopes=client.scopes
    )
    return _client_form_context(
        request,
        member,
        form,
        client=client,
        provider_audience=kept_audience,
        provider_scopes=kept_scopes,
        secrets=list(client.secrets.all()),
        max_secrets=settings.OAUTH["MAX_SECRETS_PER_CLIENT"],
    )


@require_GET
@member_view()
def client_detail(request: HttpRequest, member: Membership, client_id: str) -> HttpResponse:
    client = selectors.client_get(member.organization, client_id)
    return render(
        request, "portal/client_detail.html", _detail_context(request, member, client, None)
    )


@require_POST
@member_view(manage_clients=True)
def client_update(request: HttpRequest, member: Membership, client_id: str) -> HttpResponse:
    client = selectors.client_get(member.organization, client_id)
    form = forms.ClientForm(request.POST, catalog=services.catalog_for(member.organization))
    if form.is_valid():
        fields = form.service_fields()
        kept_audience, kept_scopes = services.provider_grants(
            organization=member.organization, audience=client.audience, scopes=client.scopes
        )
        try:
            services.catalog_check(
                organization=member.organization,
                audience=fields["audience"],
                scopes=fields["scopes"],
            )
            # What the provider granted outside the catalog stays as it is.
            fields["audience"] = fields["audience"] + [
                aud for aud in kept_audience if aud not in fields["audience"]
            ]
            fields["scopes"] = fields["scopes"] + [
                scope for scope in kept_scopes if scope not in fields["scopes"]
            ]
            services.client_update(actor=actor_for(request), client=client, **fields)
        except ValidationError as exc:
            forms.add_service_errors(form, exc)
        else:
            messages.success(request, f"Saved {client.name}.")
            return redirect(
                "portal:client-detail", org_id=member.organization_id, client_id=client.id
            )
    client = selectors.client_get(member.organization, client_id)  # unchanged values to show
    context = _detail_context(request, member, client, form)
    return render(request, "portal/client_detail.html", context, status=400)


@require_GET
@member_view(manage_clients=True)
def client_delete_confirm(request: HttpRequest, member: Membership, client_id: str) -> HttpResponse:
    client = selectors.client_get(member.organization, client_id)
    form = forms.DeleteClientForm(client=client)
    return render(
        request, "portal/client_delete.html", org_context(request, member, client=client, form=form)
    )


@require_POST
@member_view(manage_clients=True)
def client_delete(request: HttpRequest, member: Membership, client_id: str) -> HttpResponse:
    client = selectors.client_get(member.organization, client_id)
    form = forms.DeleteClientForm(request.POST, client=client)
    if not form.is_valid():
        context = org_context(request, member, client=client, form=form)
        return render(request, "portal/client_delete.html", context, status=400)
    services.client_delete(actor=actor_for(request), client=client)
    messages.success(request, f"Deleted {client.name}; its secrets no longer work.")
    return redirect("portal:client-list", org_id=member.organization_id)


# --- Secrets -------------------------------------------------------------------------------------


@require_POST
@member_view(manage_clients=True)
def secret_new(request: HttpRequest, member: Membership, client_id: str) -> HttpResponse:
    """Generate another secret (rotation step one) and show it once."""
    client = selectors.client_get(member.organization, client_id)
    if replay := _replayed(request):
        return replay
    try:
        _secret, plain = services.secret_add(actor=actor_for(request), client=client)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:client-detail", org_id=member.organization_id, client_id=client.id)
    nonce_spend(
        request,
        request.POST.get("nonce", ""),
        reverse("portal:client-detail", args=[member.organization_id, client.id]),
    )
    return secret_once(request, member, client, plain, created=False)


@require_GET
@member_view(manage_clients=True)
def secret_revoke_confirm(
    request: HttpRequest, member: Membership, client_id: str, secret_id: str
) -> HttpResponse:
    client = selectors.client_get(member.organization, client_id)
    secret = selectors.secret_get(client, secret_id)
    context = org_context(request, member, client=client, secret=secret)
    template = "portal/secret_revoke.html"
    if request.htmx:
        template += "#revoke-confirm"
    return render(request, template, context)


@require_POST
@member_view(manage_clients=True)
def secret_revoke(
    request: HttpRequest, member: Membership, client_id: str, secret_id: str
) -> HttpResponse:
    """Revoke a secret for good: the token endpoint refuses it from now on."""
    client = selectors.client_get(member.organization, client_id)
    secret = selectors.secret_get(client, secret_id)
    services.secret_delete(actor=actor_for(request), secret=secret)
    messages.success(request, f"Revoked the secret ending in {secret.secret_suffix}.")
    if request.htmx:
        client = selectors.client_get(member.organization, client_id)
        context = _detail_context(request, member, client, None)
        return render(request, "portal/client_detail.html#secrets", context)
    return redirect("portal:client-detail", org_id=member.organization_id, client_id=client.id)


# --- Activity ------------------------------------------------------------------------------------


@require_GET
@member_view()
def audit_log(request: HttpRequest, member: Membership) -> HttpResponse:
    client_id = request.GET.get("client", "").strip()[:32]
    events = page_of(request, selectors.audit_list(member.organization, client_id), EVENTS_PER_PAGE)
    clients = selectors.client_list(member.organization).only("id", "name")
    context = org_context(request, member, events=events, clients=clients, client_filter=client_id)
    template = "portal/audit_log.html"
    if request.htmx and request.htmx.target == "audit-table":
        template += "#audit-table"
    return render(request, template, context)


# --- Members -------------------------------------------------------------------------------------


def _members_context(request: HttpRequest, member: Membership, **extra: object) -> dict:
    organization = member.organization
    return org_context(
        request,
        member,
        members=organization.memberships.select_related("user").order_by("create_time", "id"),
        invitations=organization.invitations.filter(accepted_time__isnull=True)[:50],
        roles=Membership.Role.choices,
        **extra,
    )


@require_GET
@member_view()
def members(request: HttpRequest, member: Membership) -> HttpResponse:
    context = _members_context(request, member, invite_form=forms.InviteForm())
    return render(request, "portal/members.html", context)


@require_POST
@member_view(manage_members=True)
def member_invite(request: HttpRequest, member: Membership) -> HttpResponse:
    form = forms.InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                actor=actor_for(request),
                organization=member.organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
            )
        except ValidationError as exc:
            forms.add_service_errors(form, exc)
        else:
            link = request.build_absolute_uri(
                reverse("portal:invitation", args=[invitation_token(invitation)])
            )
            send_mail(
                subject=f"You are invited to {member.organization.display_name}",
                message=(
                    f"{request.user.get_username()} invited you to join "
                    f"{member.organization.display_name} as {invitation.get_role_display()}.\n\n"
                    f"Accept the invitation (the link works once, for "
                    f"{settings.PORTAL_INVITATION_MAX_AGE // 86400 or 1} days):\n{link}\n"
                ),
                from_email=None,
                recipient_list=[invitation.email],
            )
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("portal:members", org_id=member.organization_id)
    context = _members_context(request, member, invite_form=form)
    return render(request, "portal/members.html", context, status=400)


@require_POST
@member_view(manage_members=True)
def member_role(request: HttpRequest, member: Membership, membership_id: int) -> HttpResponse:
    target = selectors.member_get(member.organization, membership_id)
    form = forms.RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: owner, admin or viewer.")
    else:
        try:
            services.member_role_change(
                actor=actor_for(request), membership=target, role=form.cleaned_data["role"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, f"{target.user.get_username()} is now {target.get_role_display()}."
            )
    return redirect("portal:members", org_id=member.organization_id)


@require_POST
@member_view(manage_members=True)
def member_remove(request: HttpRequest, member: Membership, membership_id: int) -> HttpResponse:
    target = selectors.member_get(member.organization, membership_id)
    try:
        services.member_remove(actor=actor_for(request), membership=target)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:members", org_id=member.organization_id)
    messages.success(request, f"Removed {target.user.get_username()}.")
    if target.user_id == request.user.pk:
        return redirect("portal:home")
    return redirect("portal:members", org_id=member.organization_id)


# --- Invitations ---------------------------------------------------------------------------------


def _invitation_or_404(token: str) -> object:
    invitation = invitation_from_token(token)
    if invitation is None:
        raise Http404("this invitation link is invalid, expired or already used")
    return invitation


@require_GET
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The invitation page: join with the current account, or set a password for a new one."""
    invitation = _invitation_or_404(token)
    from django.contrib.auth import get_user_model

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
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {invitation.organization.display_name}.")
            return redirect("portal:client-list", org_id=invitation.organization_id)
    context = {"invitation": invitation, "token": token, "has_account": False, "form": form}
    return render(request, "portal/invitation.html", context, status=400)


# --- Login with lockout --------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Django's login, with failures counted per account and per address (oauth.ratelimit).

    Past ``RATE_LIMIT_LOGIN_FAILURES`` the form is refused without checking the password, even
    a right one, until the window closes: 429, ``Retry-After`` and a message that says so.
    """

    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        username = request.POST.get("username", "")
        try:
            ratelimit.check(ratelimit.login_failure_counters(username, client_ip(request)))
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
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: object) -> HttpResponse:
        username = self.request.POST.get("username", "")
        ratelimit.hit(ratelimit.login_failure_counters(username, client_ip(self.request)))
        return super().form_invalid(form)
