"""API clients and their secrets: list, register, edit, delete, add and revoke secrets.

A plain secret leaves the server once, in ``secret_once``'s response (``no-store``). The forms
that make one carry a one-time token (``portal.lib.once``) that the service claims atomically, so
sending the same form again (double click, reload, several tabs at once) leads to the client's
page instead of making a second client or secret, or showing the first secret again.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clients import selectors, services
from clients.models import ApiClient, Membership
from oauth.settings import oauth_settings
from portal.lib.once import nonce_issue, nonce_of
from portal.ui import forms
from portal.ui.tenancy import member_view
from portal.ui.views._common import actor_for, org_context, page_of
from portal.ui.views.federation import federation_context
from portal.ui.views.usage import usage_context

CLIENTS_PER_PAGE = 20


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
    return org_context(request, member, form=form, nonce=nonce_issue(), **extra)


def secret_once(
    request: HttpRequest, member: Membership, client: ApiClient, plain: str, created: bool
) -> HttpResponse:
    """The only response that ever holds the plain secret: never cached, never stored."""
    context = org_context(
        request,
        member,
        client=client,
        plain_secret=plain,
        created=created,
        detail_url=_detail_url(member, client),
        token_url=f"{oauth_settings.ISSUER}/oauth/token",
    )
    response = render(request, "portal/secret_once.html", context)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _detail_url(member: Membership, client: ApiClient) -> str:
    return reverse("portal:client-detail", args=[member.organization_id, client.id])


ALREADY_SUBMITTED = (
    "This form was already submitted: here is what it made. Its secret was shown once, to the "
    "first submission; if you did not copy it, generate a new secret."
)


def _already_submitted(
    request: HttpRequest, member: Membership, exc: services.AlreadySubmitted
) -> HttpResponse:
    """A form sent again (double click, reload, several tabs) leads to what its first
    submission made, never to a second secret."""
    messages.info(request, ALREADY_SUBMITTED)
    if exc.target_id:
        return redirect(
            "portal:client-detail", org_id=member.organization_id, client_id=exc.target_id
        )
    return redirect("portal:client-list", org_id=member.organization_id)


@require_http_methods(["GET", "POST"])
@member_view(manage_clients=True)
def client_new(request: HttpRequest, member: Membership) -> HttpResponse:
    """The register form; a valid POST creates the client and shows its secret once."""
    if request.method == "POST":
        form = forms.ClientForm(request.POST, organization=member.organization)
        if form.is_valid():  # the catalog checked too (``ClientForm.clean``)
            fields = form.service_fields()
            try:
                client, plain = services.client_create(
                    actor=actor_for(request),
                    organization=member.organization,
                    form_token=nonce_of(request),
                    **fields,
                )
            except services.AlreadySubmitted as exc:
                return _already_submitted(request, member, exc)
            except ValidationError as exc:
                forms.add_service_errors(form, exc)
            else:
                return secret_once(request, member, client, plain, created=True)
        context = _client_form_context(request, member, form)
        return render(request, "portal/client_new.html", context, status=400)
    form = forms.ClientForm(organization=member.organization)
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
            organization=member.organization,
            initial={
                "name": client.name,
                "description": client.description,
                "audience": client.audience,
                "scopes": client.scopes,
                "custom_claims": client.custom_claims,
                "expiry": client.expiry,
                "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
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
        revoked_secrets=selectors.recently_revoked_secrets(client),
        max_secrets=oauth_settings.MAX_SECRETS_PER_CLIENT,
        quota_form=forms.QuotaForm(
            initial={
                "per_hour": client.token_quota_per_hour,
                "per_day": client.token_quota_per_day,
                "mode": client.token_quota_mode,
            }
        ),
        **federation_context(client),
        **usage_context(request, member.organization, client),
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
    form = forms.ClientForm(request.POST, organization=member.organization)
    if form.is_valid():  # the catalog checked too (``ClientForm.clean``)
        fields = form.service_fields()
        kept_audience, kept_scopes = services.provider_grants(
            organization=member.organization, audience=client.audience, scopes=client.scopes
        )
        try:
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
    if services.client_delete(actor=actor_for(request), client=client):
        messages.success(request, f"Deleted {client.name}; its secrets no longer work.")
    else:
        messages.info(request, f"{client.name} was already deleted.")
    return redirect("portal:client-list", org_id=member.organization_id)


# --- Secrets -------------------------------------------------------------------------------------


@require_POST
@member_view(manage_clients=True)
def secret_new(request: HttpRequest, member: Membership, client_id: str) -> HttpResponse:
    """Generate another secret (rotation step one) and show it once."""
    client = selectors.client_get(member.organization, client_id)
    try:
        _secret, plain = services.secret_add(
            actor=actor_for(request), client=client, form_token=nonce_of(request)
        )
    except services.AlreadySubmitted as exc:
        return _already_submitted(request, member, exc)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:client-detail", org_id=member.organization_id, client_id=client.id)
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
