"""API clients and their secrets: list, register, edit, delete, add and revoke secrets.

A plain secret leaves the server once, in ``secret_once``'s response (``no-store``). The forms
that make one carry a nonce, so that sending the same form again (back button, reload) leads to
the client's page instead of making a second secret or showing the first again.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clients import selectors, services
from clients.models import ApiClient, Membership
from oauth.settings import oauth_settings
from portal.lib.once import nonce_issue, nonce_spend, nonce_used
from portal.ui import forms
from portal.ui.tenancy import member_view
from portal.ui.views._common import actor_for, org_context, page_of

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
    return org_context(request, member, form=form, nonce=nonce_issue(request), **extra)


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


def _spend_nonce(request: HttpRequest, member: Membership, client: ApiClient) -> None:
    """Remember where this secret-making form led: sent again, it goes there (``_replayed``)."""
    nonce_spend(request, request.POST.get("nonce", ""), _detail_url(member, client))


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
                _spend_nonce(request, member, client)
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
        max_secrets=oauth_settings.MAX_SECRETS_PER_CLIENT,
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
    _spend_nonce(request, member, client)
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
