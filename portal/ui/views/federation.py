"""Workload identity federation in the portal: a client's trust policies (add from a preset,
delete), a box that checks a pasted external token against them without issuing anything, and a
GitHub Actions workflow that trades its OIDC token for ours, with no secret at all."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from clients import selectors, services
from clients.models import ApiClient, Membership
from oauth import federation
from oauth.settings import oauth_settings
from portal.ui import forms
from portal.ui.tenancy import member_view
from portal.ui.views._common import actor_for, org_context

# What each preset fills in; the person replaces the placeholders with their own names.
PRESETS: dict[str, dict[str, object]] = {
    "github": {
        "label": "GitHub Actions",
        "name": "GitHub Actions: deploy from main",
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:your-org/your-repo:environment:production",
        "claim_conditions": "repository_owner = your-org\nref = refs/heads/main",
        "max_token_age": 300,
    },
    "gitlab": {
        "label": "GitLab CI",
        "name": "GitLab CI: deploy from main",
        "issuer": "https://gitlab.com",
        "subject": "project_path:your-group/your-project:ref_type:branch:ref:main",
        "claim_conditions": "namespace_path = your-group",
        "max_token_age": 300,
    },
    "kubernetes": {
        "label": "Kubernetes",
        "name": "Kubernetes: deployer service account",
        "issuer": "https://kubernetes.default.svc.cluster.local",
        "subject": "system:serviceaccount:your-namespace:your-service-account",
        "claim_conditions": "kubernetes.io.namespace = your-namespace",
        # A projected token is renewed at 80 % of its hour; it may be that old.
        "max_token_age": 3600,
    },
    "oidc": {
        "label": "Any OIDC issuer",
        "name": "",
        "issuer": "https://",
        "subject": "",
        "claim_conditions": "",
        "max_token_age": 300,
    },
}


def federation_context(client: ApiClient) -> dict[str, object]:
    """What the client page's Federation section shows (portal.ui.views.clients adds it)."""
    policies = selectors.trust_policies_of(client)
    return {
        "trust_policies": policies,
        "presets": [(key, preset["label"]) for key, preset in PRESETS.items()],
        "github_policy": next(
            (p for p in policies if p.issuer == PRESETS["github"]["issuer"]), None
        ),
        "our_issuer": oauth_settings.ISSUER,
        "test_form": forms.TokenTestForm(),
    }


def _client_page(member: Membership, client: ApiClient) -> str:
    url = reverse("portal:client-detail", args=[member.organization_id, client.id])
    return f"{url}#federation"


@require_http_methods(["GET", "POST"])
@member_view(manage_clients=True)
def trust_policy_new(request: HttpRequest, member: Membership, client_id: str) -> HttpResponse:
    client = selectors.client_get(member.organization, client_id)
    preset_key = request.GET.get("preset", "github")
    preset = PRESETS.get(preset_key, PRESETS["oidc"])
    if request.method == "POST":
        form = forms.TrustPolicyForm(request.POST)
        if form.is_valid():
            try:
                services.trust_policy_create(
                    actor=actor_for(request), client=client, **form.cleaned_data
                )
            except ValidationError as exc:
                forms.add_service_errors(form, exc)
            else:
                messages.success(request, f"Added the trust policy {form.cleaned_data['name']}.")
                return redirect(_client_page(member, client))
    else:
        initial = {k: v for k, v in preset.items() if k != "label"}
        form = forms.TrustPolicyForm(initial={**initial, "audience": oauth_settings.ISSUER})
    context = org_context(
        request,
        member,
        client=client,
        form=form,
        presets=[(key, p["label"]) for key, p in PRESETS.items()],
        preset=preset_key if preset_key in PRESETS else "oidc",
    )
    status = 400 if request.method == "POST" else 200
    return render(request, "portal/trust_policy_new.html", context, status=status)


@require_POST
@member_view(manage_clients=True)
def trust_policy_delete(
    request: HttpRequest, member: Membership, client_id: str, policy_id: str
) -> HttpResponse:
    client = selectors.client_get(member.organization, client_id)
    policy = selectors.trust_policy_get(client, policy_id)
    services.trust_policy_delete(actor=actor_for(request), policy=policy)
    messages.success(request, f"Deleted the trust policy {policy.name}: it admits no one now.")
    return redirect(_client_page(member, client))


@sensitive_post_parameters("token")
@require_POST
@member_view()
def trust_policy_test(request: HttpRequest, member: Membership, client_id: str) -> HttpResponse:
    """Check a pasted external token against the client's policies; nothing is issued or kept."""
    client = selectors.client_get(member.organization, client_id)
    form = forms.TokenTestForm(request.POST)
    refusal, reports = None, []
    if form.is_valid():
        refusal, reports = federation.explain(form.cleaned_data["token"], client)
    context = org_context(
        request, member, client=client, test_form=form, refusal=refusal, reports=reports
    )
    template = "portal/federation.html#test-result" if request.htmx else "portal/token_test.html"
    response = render(request, template, context, status=200 if form.is_valid() else 400)
    response["Cache-Control"] = "no-store"
    return response
