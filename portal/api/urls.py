from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from portal.api import schema, views
from portal.api.errors import not_found

app_name = "api"

ORG = "organizations/<str:organization_id>"
CLIENT = f"{ORG}/clients/<str:client_id>"

schema.annotate()

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path(
        "docs",
        # The split view serves its start-up script as a file: no inline script under the CSP.
        SpectacularSwaggerSplitView.as_view(
            url_name="api:openapi", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    path("secrets:report-leak", views.ReportLeakView.as_view(), name="secret-report-leak"),
    path("organizations", views.OrganizationListView.as_view(), name="organization-list"),
    path(ORG, views.OrganizationDetailView.as_view(), name="organization-detail"),
    path(f"{ORG}/clients", views.ClientListView.as_view(), name="client-list"),
    path(f"{ORG}/usage", views.OrganizationUsageView.as_view(), name="organization-usage"),
    path(f"{CLIENT}/usage", views.ClientUsageView.as_view(), name="client-usage"),
    path(f"{ORG}/audit-events", views.AuditEventListView.as_view(), name="audit-event-list"),
    path(CLIENT, views.ClientDetailView.as_view(), name="client-detail"),
    path(f"{CLIENT}/secrets", views.SecretListView.as_view(), name="secret-list"),
    path(
        f"{CLIENT}/secrets/<str:secret_id>", views.SecretDetailView.as_view(), name="secret-detail"
    ),
    path(f"{CLIENT}/keys", views.KeyListView.as_view(), name="key-list"),
    path(f"{CLIENT}/keys/<str:key_id>", views.KeyDetailView.as_view(), name="key-detail"),
    path(
        f"{CLIENT}/trust-policies",
        views.TrustPolicyListView.as_view(),
        name="trust-policy-list",
    ),
    path(
        f"{CLIENT}/trust-policies/<str:policy_id>",
        views.TrustPolicyDetailView.as_view(),
        name="trust-policy-detail",
    ),
    *[
        route
        for prefix, name, v in ((f"{ORG}/", "organization-", ""), ("", "", "Provider"))
        for route in (
            path(
                f"{prefix}webhook-endpoints",
                getattr(views, v + "WebhookEndpointListView").as_view(),
                name=f"{name}webhook-endpoint-list",
            ),
            path(
                f"{prefix}webhook-endpoints/<str:endpoint_id>/secrets:rotate",
                getattr(views, v + "WebhookSecretRotateView").as_view(),
                name=f"{name}webhook-endpoint-rotate",
            ),
            path(
                f"{prefix}webhook-endpoints/<str:endpoint_id>/deliveries",
                getattr(views, v + "WebhookDeliveryListView").as_view(),
                name=f"{name}webhook-delivery-list",
            ),
            path(
                f"{prefix}webhook-endpoints/<str:endpoint_id>:test",
                getattr(views, v + "WebhookTestView").as_view(),
                name=f"{name}webhook-endpoint-test",
            ),
            path(
                f"{prefix}webhook-endpoints/<str:endpoint_id>",
                getattr(views, v + "WebhookEndpointDetailView").as_view(),
                name=f"{name}webhook-endpoint-detail",
            ),
        )
    ],
    # Anything else under /api/v1 is a 404 in the API's own format, not an HTML page.
    re_path(r"^.*$", not_found),
]
