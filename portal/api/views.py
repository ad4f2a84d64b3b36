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
        return Response(s.SecretList({"secrets": client.secrets.all()}).data)

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
