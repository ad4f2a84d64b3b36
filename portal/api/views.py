"""The management REST API: thin views that parse, call a service, and render."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clients import selectors, services
from clients.models import ApiClient, Organization
from clients.services import Actor
from m2m_auth_kit.guards import HasScopes
from oauth import ratelimit, usage
from oauth.settings import oauth_settings
from portal.api import serializers as s
from portal.api.authentication import ManagementTokenAuthentication
from portal.api.pagination import page
from portal.lib.logs import log_context
from portal.lib.net import client_ip  # the one place that knows about trusted proxies


class TooManyRequests(exceptions.APIException):
    """429 RESOURCE_EXHAUSTED with Retry-After (portal.api.errors reads ``wait``)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"

    def __init__(self, wait: int) -> None:
        super().__init__(f"too many requests; retry after {wait} s")
        self.wait = wait


class ManagementView(APIView):
    """Bearer tokens of live management clients (``portal.api.authentication``) with the
    management scope."""

    authentication_classes = [ManagementTokenAuthentication]
    permission_classes = [HasScopes]

    @property
    def required_scopes(self) -> list[str]:
        return [oauth_settings.MANAGEMENT_SCOPE]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authenticates, checks scopes
        try:
            # Every answered call counts: one script (or upsert) per management request.
            ratelimit.acquire(ratelimit.api_counters(request.auth.client_id))
        except ratelimit.RateLimited as limited:
            raise TooManyRequests(limited.retry_after) from None
        log_context(
            request._request,
            client_id=request.auth.client_id,
            organization_id=kwargs.get("organization_id"),
        )

    @staticmethod
    def client_of(organization_id: str, client_id: str) -> ApiClient:
        """The client of this organization, or 404 (tenancy: another organization's is unknown)."""
        return selectors.client_get(selectors.organization_get(organization_id), client_id)

    def actor(self) -> Actor:
        claims = self.request.auth
        return Actor.for_client(claims.client_id, ip=client_ip(self.request))

    @staticmethod
    def parse_query(serializer_class: type, request: Request) -> dict[str, Any]:
        serializer = serializer_class(data=request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @staticmethod
    def parse(serializer_class: type, request: Request, partial: bool = False) -> dict[str, Any]:
        serializer = serializer_class(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class OrganizationListView(ManagementView):
    def get(self, request: Request) -> Response:
        items, paging = page(
            Organization.objects.order_by("create_time", "id"), request.query_params, "orgs"
        )
        return Response(s.OrganizationList({"organizations": items, **paging}).data)

    def post(self, request: Request) -> Response:
        data = self.parse(s.OrganizationInput, request)
        organization = services.organization_create(actor=self.actor(), **data)
        return Response(s.OrganizationOne({"organization": organization}).data, status=201)


class OrganizationDetailView(ManagementView):
    def get(self, request: Request, organization_id: str) -> Response:
        organization = selectors.organization_get(organization_id)
        return Response(s.OrganizationOne({"organization": organization}).data)

    def patch(self, request: Request, organization_id: str) -> Response:
        organization = selectors.organization_get(organization_id)
        data = self.parse(s.OrganizationPatch, request, partial=True)
        organization = services.organization_update(
            actor=self.actor(), organization=organization, **data
        )
        return Response(s.OrganizationOne({"organization": organization}).data)


class ReportLeakView(ManagementView):
    """Secrets found in public, from any scanner or the provider's own tools: each of ours is
    revoked (or only mailed, per the organization's on_leak), as GitHub's alerts do."""

    def post(self, request: Request) -> Response:
        data = self.parse(s.ReportLeakInput, request)
        results = services.secrets_report_leak(
            actor=self.actor(),
            tokens=data["secrets"],
            url=data.get("url", ""),
            source=data.get("source", ""),
        )
        return Response(
            s.ReportLeakResults({"results": results}).data, headers={"Cache-Control": "no-store"}
        )


class ClientListView(ManagementView):
    def get(self, request: Request, organization_id: str) -> Response:
        organization = selectors.organization_get(organization_id)
        items, paging = page(
            selectors.client_list(organization), request.query_params, f"clients:{organization.id}"
        )
        return Response(s.ClientList({"clients": items, **paging}).data)

    def post(self, request: Request, organization_id: str) -> Response:
        organization = selectors.organization_get(organization_id)
        data = self.parse(s.ClientInput, request)
        client, plain = services.client_create(
            actor=self.actor(), organization=organization, **data
        )
        client = selectors.client_get(organization, client.id)
        return Response(
            s.ClientCreated({"client": client, "plain_secret": plain}).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )


class AuditEventListView(ManagementView):
    def get(self, request: Request, organization_id: str) -> Response:
        organization = selectors.organization_get(organization_id)
        query = s.AuditEventQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        events = selectors.audit_list(organization, **query.validated_data)
        items, paging = page(events, request.query_params, f"audit:{organization.id}")
        return Response(s.AuditEventList({"audit_events": items, **paging}).data)


class OrganizationUsageView(ManagementView):
    def get(self, request: Request, organization_id: str) -> Response:
        organization = selectors.organization_get(organization_id)
        query = self.parse_query(s.UsageQuery, request)
        entries = usage.series(organization_id=organization.id, client_id=None, **query)
        return Response(s.Usage({"usage": entries}).data)


class ClientUsageView(ManagementView):
    def get(self, request: Request, organization_id: str, client_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        query = self.parse_query(s.UsageQuery, request)
        entries = usage.series(organization_id=organization_id, client_id=client.id, **query)
        return Response(s.Usage({"usage": entries}).data)


class ClientDetailView(ManagementView):
    def get(self, request: Request, organization_id: str, client_id: str) -> Response:
        return Response(s.ClientOne({"client": self.client_of(organization_id, client_id)}).data)

    def patch(self, request: Request, organization_id: str, client_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        data = self.parse(s.ClientPatch, request, partial=True)
        services.client_update(actor=self.actor(), client=client, **data)
        # Read again: the secrets and keys prefetched before the update are shown as they are now.
        return Response(s.ClientOne({"client": self.client_of(organization_id, client_id)}).data)

    def delete(self, request: Request, organization_id: str, client_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        services.client_delete(actor=self.actor(), client=client)
        return Response({})


class SecretListView(ManagementView):
    def get(self, request: Request, organization_id: str, client_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        query = s.SecretQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        secrets = list(client.secrets.all())
        if "unused" in query.validated_data:
            secrets = [x for x in secrets if x.is_unused == query.validated_data["unused"]]
        return Response(s.SecretList({"secrets": secrets}).data)

    def post(self, request: Request, organization_id: str, client_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        # An empty body is fine: a secret that never expires.
        has_body = int(request.META.get("CONTENT_LENGTH") or 0) > 0
        data = self.parse(s.SecretInput, request) if has_body else {}
        expire_time = data.get("expire_time")
        if "expiry_seconds" in data:
            expire_time = services.expire_time_from_seconds(data["expiry_seconds"])
        secret, plain = services.secret_add(
            actor=self.actor(), client=client, expire_time=expire_time
        )
        return Response(
            s.SecretCreated({"secret": secret, "plain_secret": plain}).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )


class SecretDetailView(ManagementView):
    def get(
        self, request: Request, organization_id: str, client_id: str, secret_id: str
    ) -> Response:
        client = self.client_of(organization_id, client_id)
        return Response(s.SecretOne({"secret": selectors.secret_get(client, secret_id)}).data)

    def delete(
        self, request: Request, organization_id: str, client_id: str, secret_id: str
    ) -> Response:
        client = self.client_of(organization_id, client_id)
        secret = selectors.secret_get(client, secret_id)
        services.secret_delete(actor=self.actor(), secret=secret)
        return Response({})


class KeyListView(ManagementView):
    """The public keys a client signs its assertions with (``private_key_jwt``)."""

    def get(self, request: Request, organization_id: str, client_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        return Response(s.KeyList({"keys": client.keys.all()}).data)

    def post(self, request: Request, organization_id: str, client_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        data = self.parse(s.KeyInput, request)
        key = services.client_key_add(actor=self.actor(), client=client, jwk=data["jwk"])
        return Response(s.KeyOne({"key": key}).data, status=status.HTTP_201_CREATED)


class KeyDetailView(ManagementView):
    def get(self, request: Request, organization_id: str, client_id: str, key_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        return Response(s.KeyOne({"key": selectors.client_key_get(client, key_id)}).data)

    def delete(
        self, request: Request, organization_id: str, client_id: str, key_id: str
    ) -> Response:
        client = self.client_of(organization_id, client_id)
        key = selectors.client_key_get(client, key_id)
        services.client_key_delete(actor=self.actor(), key=key)
        return Response({})


class TrustPolicyListView(ManagementView):
    """The trust policies that let external workload tokens in (workload identity federation)."""

    def get(self, request: Request, organization_id: str, client_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        policies = selectors.trust_policies_of(client)
        return Response(s.TrustPolicyList({"trust_policies": policies}).data)

    def post(self, request: Request, organization_id: str, client_id: str) -> Response:
        client = self.client_of(organization_id, client_id)
        data = self.parse(s.TrustPolicyInput, request)
        policy = services.trust_policy_create(actor=self.actor(), client=client, **data)
        return Response(
            s.TrustPolicyOne({"trust_policy": policy}).data, status=status.HTTP_201_CREATED
        )


class TrustPolicyDetailView(ManagementView):
    def get(
        self, request: Request, organization_id: str, client_id: str, policy_id: str
    ) -> Response:
        policy = selectors.trust_policy_get(self.client_of(organization_id, client_id), policy_id)
        return Response(s.TrustPolicyOne({"trust_policy": policy}).data)

    def patch(
        self, request: Request, organization_id: str, client_id: str, policy_id: str
    ) -> Response:
        policy = selectors.trust_policy_get(self.client_of(organization_id, client_id), policy_id)
        data = self.parse(s.TrustPolicyPatch, request, partial=True)
        policy = services.trust_policy_update(actor=self.actor(), policy=policy, **data)
        return Response(s.TrustPolicyOne({"trust_policy": policy}).data)

    def delete(
        self, request: Request, organization_id: str, client_id: str, policy_id: str
    ) -> Response:
        policy = selectors.trust_policy_get(self.client_of(organization_id, client_id), policy_id)
        services.trust_policy_delete(actor=self.actor(), policy=policy)
        return Response({})


class WebhookView(ManagementView):
    """An organization's webhook endpoints (``organization_id`` in the path) or the
    provider's own (no organization: they get every organization's events)."""

    @staticmethod
    def owner(organization_id: str | None) -> Organization | None:
        return selectors.organization_get(organization_id) if organization_id else None

    def endpoint(self, organization_id: str | None, endpoint_id: str) -> Any:
        return selectors.webhook_endpoint_get(self.owner(organization_id), endpoint_id)


class WebhookEndpointListView(WebhookView):
    def get(self, request: Request, organization_id: str | None = None) -> Response:
        owner = self.owner(organization_id)
        items, paging = page(
            selectors.webhook_endpoints_of(owner),
            request.query_params,
            f"webhooks:{owner.id if owner else ''}",
        )
        return Response(s.WebhookEndpointList({"webhook_endpoints": items, **paging}).data)

    def post(self, request: Request, organization_id: str | None = None) -> Response:
        owner = self.owner(organization_id)
        data = self.parse(s.WebhookEndpointInput, request)
        endpoint, secret = services.webhook_endpoint_create(
            actor=self.actor(), organization=owner, **data
        )
        return Response(
            s.WebhookEndpointCreated({"webhook_endpoint": endpoint, "signing_secret": secret}).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )


class WebhookEndpointDetailView(WebhookView):
    def get(
        self, request: Request, endpoint_id: str, organization_id: str | None = None
    ) -> Response:
        endpoint = self.endpoint(organization_id, endpoint_id)
        return Response(s.WebhookEndpointOne({"webhook_endpoint": endpoint}).data)

    def patch(
        self, request: Request, endpoint_id: str, organization_id: str | None = None
    ) -> Response:
        endpoint = self.endpoint(organization_id, endpoint_id)
        data = self.parse(s.WebhookEndpointPatch, request, partial=True)
        endpoint = services.webhook_endpoint_update(actor=self.actor(), endpoint=endpoint, **data)
        return Response(s.WebhookEndpointOne({"webhook_endpoint": endpoint}).data)

    def delete(
        self, request: Request, endpoint_id: str, organization_id: str | None = None
    ) -> Response:
        endpoint = self.endpoint(organization_id, endpoint_id)
        services.webhook_endpoint_delete(actor=self.actor(), endpoint=endpoint)
        return Response({})


class WebhookSecretRotateView(WebhookView):
    def post(
        self, request: Request, endpoint_id: str, organization_id: str | None = None
    ) -> Response:
        endpoint = self.endpoint(organization_id, endpoint_id)
        secret = services.webhook_endpoint_rotate_secret(actor=self.actor(), endpoint=endpoint)
        return Response(
            s.SigningSecret({"signing_secret": secret}).data, headers={"Cache-Control": "no-store"}
        )


class WebhookTestView(WebhookView):
    def post(
        self, request: Request, endpoint_id: str, organization_id: str | None = None
    ) -> Response:
        endpoint = self.endpoint(organization_id, endpoint_id)
        event = services.webhook_endpoint_test(actor=self.actor(), endpoint=endpoint)
        return Response(
            s.WebhookTestSent({"event_id": event.id}).data, status=status.HTTP_202_ACCEPTED
        )


class WebhookDeliveryListView(WebhookView):
    def get(
        self, request: Request, endpoint_id: str, organization_id: str | None = None
    ) -> Response:
        endpoint = self.endpoint(organization_id, endpoint_id)
        items, paging = page(
            selectors.webhook_deliveries_of(endpoint),
            request.query_params,
            f"deliveries:{endpoint.id}",
        )
        return Response(s.WebhookDeliveryList({"deliveries": items, **paging}).data)


# The provider's own endpoints: the same views without an organization in the path (classes of
# their own so that the OpenAPI document names their operations apart).


class ProviderWebhookEndpointListView(WebhookEndpointListView):
    pass


class ProviderWebhookEndpointDetailView(WebhookEndpointDetailView):
    pass


class ProviderWebhookSecretRotateView(WebhookSecretRotateView):
    pass


class ProviderWebhookTestView(WebhookTestView):
    pass


class ProviderWebhookDeliveryListView(WebhookDeliveryListView):
    pass
