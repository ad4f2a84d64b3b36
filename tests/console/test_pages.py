"""Every admin page loads for a superuser, shows nothing secret, and is closed to the unprivileged.

The pages are found by walking ``admin.site._registry``, so a model registered later is
covered without touching this file.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.test import RequestFactory
from django.urls import reverse

from tests.console.conftest import assert_clean

pytestmark = pytest.mark.django_db


def admin_pages(user) -> list[tuple[str, str]]:
    """(kind, url) for every changelist, add page (where adding is allowed) and change page."""
    request = RequestFactory().get("/admin/")
    request.user = user
    pages = []
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(("changelist", reverse("admin:{}_{}_changelist".format(*info))))
        if model_admin.has_add_permission(request):
            pages.append(("add", reverse("admin:{}_{}_add".format(*info))))
        for obj in model_admin.get_queryset(request)[:3]:
            pages.append(
                ("change", reverse("admin:{}_{}_change".format(*info), args=[quote(obj.pk)]))
            )
    return pages


def test_every_model_of_ours_is_registered():
    names = {f"{m._meta.app_label}.{m.__name__}" for m in admin.site._registry}
    assert {
        "clients.Organization",
        "clients.Membership",
        "clients.ApiClient",
        "clients.ManagementClient",
        "clients.ClientSecret",
        "clients.ApiResource",
        "clients.AuditEvent",
        "clients.ClientKey",
        "clients.TrustPolicy",
        "clients.WebhookEndpoint",
        "clients.WebhookDelivery",
        "oauth.TokenStat",
        "oauth.RevokedToken",
        "oauth.SigningKey",
        "auth.User",
    } <= names


def test_every_page_loads_for_a_superuser_and_leaks_nothing(admin_client, superuser, console):
    pages = admin_pages(superuser)
    kinds = {kind for kind, _ in pages}
    assert kinds == {"changelist", "add", "change"}
    # Every registered model with rows got a change page.
    assert len([p for p in pages if p[0] == "change"]) >= len(admin.site._registry) - 1
    for _kind, url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_clean(response.content, console)


def test_list_pages_search_and_filter(admin_client, console, org):
    guide = console.credentials["guide"].client
    for query in (guide.name[:10], guide.id, "Acme", "acme"):
        response = admin_client.get(reverse("admin:clients_apiclient_changelist"), {"q": query})
        assert response.status_code == 200
        assert guide.id in response.content.decode(), query
    response = admin_client.get(
        reverse("admin:clients_apiclient_changelist"), {"organization__id__exact": org.id}
    )
    assert guide.id in response.content.decode()
    assert console.credentials["other"].client.id not in response.content.decode()
    response = admin_client.get(reverse("admin:clients_organization_changelist"), {"q": "globex"})
    assert "Globex" in response.content.decode() and "Acme Corp" not in response.content.decode()
    for params in ({"status": "EXPIRED"}, {"status": "ACTIVE"}, {"stale": "yes"}):
        response = admin_client.get(reverse("admin:clients_clientsecret_changelist"), params)
        assert response.status_code == 200, params
    expired = admin_client.get(
        reverse("admin:clients_clientsecret_changelist"), {"status": "EXPIRED"}
    ).context["cl"]
    assert [s.effective_status for s in expired.result_list] == ["EXPIRED"]


def test_client_list_counts_active_secrets_without_a_query_per_row(
    admin_client, console, django_assert_max_num_queries
):
    url = reverse("admin:clients_apiclient_changelist")
    admin_client.get(url)
    response = admin_client.get(url)
    rows = {c.id: c for c in response.context["cl"].result_list}
    guide = console.credentials["guide"].client
    # Three secrets: two usable, one expired.
    assert rows[guide.id].active_secrets == 2
    with django_assert_max_num_queries(12):
        admin_client.get(url)


def test_client_change_page_shows_claims_readably_and_secrets_by_suffix(admin_client, console):
    guide = console.credentials["guide"]
    response = admin_client.get(
        reverse("admin:clients_apiclient_change", args=[quote(guide.client.id)])
    )
    text = response.content.decode()
    assert "github_repository=acmecorp/inventory-service" in text
    assert "deploy:applications read:deployments" in text
    assert f"…{guide.secret[-4:]}" in text
    assert "EXPIRED" in text


def test_signing_key_pages_show_public_facts_only(admin_client, console):
    from oauth.models import SigningKey

    key = SigningKey.objects.order_by("-create_time").first()
    response = admin_client.get(reverse("admin:oauth_signingkey_change", args=[quote(key.kid)]))
    text = response.content.decode()
    assert key.kid in text and key.public_jwk["n"][:20] in text
    assert "private_key_encrypted" not in text
    assert "private key encrypted" not in text.lower()


def test_a_staff_user_without_permissions_gets_nothing(client, staff_nobody, superuser, console):
    client.force_login(staff_nobody)
    for _kind, url in admin_pages(superuser):
        response = client.get(url)
        assert response.status_code in (302, 403), url
    for url in (reverse("admin:oauth_signingkey_rotate"),):
        assert client.get(url).status_code == 403
        assert client.post(url).status_code == 403
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert 'id="dashboard"' not in index.content.decode()
    assert "Acme Corp" not in index.content.decode()


def test_anonymous_users_are_sent_to_log_in(client, superuser, console):
    for _kind, url in admin_pages(superuser)[:10]:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_audit_log_is_read_only_even_for_a_superuser(admin_client, console):
    from clients.models import AuditEvent

    event = AuditEvent.objects.first()
    count = AuditEvent.objects.count()
    assert admin_client.get(reverse("admin:clients_auditevent_add")).status_code == 403
    delete = reverse("admin:clients_auditevent_delete", args=[quote(event.pk)])
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:clients_auditevent_change", args=[quote(event.pk)])
    response = admin_client.get(change)
    assert response.status_code == 200
    assert 'name="action"' not in response.content.decode()  # no editable field
    response = admin_client.post(change, {"action": "forged"})
    assert response.status_code == 403
    listing = admin_client.post(
        reverse("admin:clients_auditevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert listing.status_code in (200, 302)
    assert AuditEvent.objects.count() == count
    event.refresh_from_db()
    assert event.action != "forged"


def test_the_dashboard_shows_the_figures(admin_client, console, org):
    from datetime import timedelta

    from django.utils import timezone

    from clients.models import ClientSecret
    from oauth.models import TokenStat

    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    TokenStat.objects.create(hour=hour - timedelta(hours=3), issued=5, failed=1)
    TokenStat.objects.create(hour=hour - timedelta(hours=30), issued=1000, failed=1000)
    old = timezone.now() - timedelta(days=120)
    guide = console.credentials["guide"].client
    ClientSecret.objects.filter(client=guide).update(create_time=old)  # never used, 120 days old
    other = console.credentials["other"].client
    ClientSecret.objects.filter(client=other).update(create_time=old, last_used_time=old)
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    text = response.content.decode()
    assert '<td id="tokens-issued">12</td>' in text
    assert '<td id="tokens-failed">3</td>' in text
    assert '<td id="stale-secrets">4</td>' in text
    assert "Acme Corp" in text and "Globex" in text
    assert_clean(response.content, console)
