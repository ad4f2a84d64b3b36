"""Test-only views behind the guards, in plain Django and in DRF."""

from django.http import JsonResponse
from django.urls import path
from django.views import View
from rest_framework.response import Response
from rest_framework.views import APIView

from m2m_auth_kit.guards import (
    BearerTokenAuthentication,
    HasScopes,
    ScopesRequiredMixin,
    get_verifier,
    require_scopes,
)
from m2m_auth_kit.verify import Claims, InvalidToken, TokenVerifier


def _describe(request):
    claims = request.token_claims
    return {"client_id": claims.client_id, "scopes": sorted(claims.scopes)}


@require_scopes("read")
def read_view(request):
    return JsonResponse(_describe(request))


@require_scopes()
def any_token_view(request):
    return JsonResponse(_describe(request))


@require_scopes("read")
async def async_read_view(request):
    return JsonResponse(_describe(request))


class ItemsView(ScopesRequiredMixin, View):
    required_scopes = {"GET": ["read"], "POST": ["write"]}

    def get(self, request):
        return JsonResponse(_describe(request))

    def post(self, request):
        return JsonResponse(_describe(request), status=201)


class ApiItems(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasScopes]
    required_scopes = {"GET": ["read"], "POST": ["write"], "DELETE": ["admin", "write"]}

    def get(self, request):
        return Response(
            {
                "client_id": request.user.client_id,
                "organization_id": request.user.organization_id,
                "scopes": sorted(request.auth.scopes),
                "token_claims": request.token_claims.client_id,
            }
        )

    def post(self, request):
        return Response({"created": True}, status=201)

    def delete(self, request):
        return Response(status=204)

    def put(self, request):
        return Response({"replaced": True})


def header_dropping_handler(exc, context):
    """A careless project handler: right status, our body, no headers at all."""
    return Response({"detail": str(exc.detail)}, status=exc.status_code)


class ApiItemsCarelessHandler(ApiItems):
    def get_exception_handler(self):
        return header_dropping_handler


class ApiNoScopes(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasScopes]

    def get(self, request):
        return Response({})


@require_scopes("read", dpop_required=True)
def dpop_only_view(request):
    return JsonResponse(_describe(request))


class DPoPOnlyItems(ItemsView):
    dpop_required = True


class ApiDPoPOnlyItems(ApiItems):
    dpop_required = True


class DenyListVerifier:
    """Wraps the configured verifier and refuses the clients on a deny list (a revocation list
    of one's own): what ``BearerTokenAuthentication.get_verifier`` is for."""

    denied = frozenset({"denied-client"})

    def __init__(self, inner: TokenVerifier) -> None:
        self.inner = inner

    def verify(self, token: str) -> Claims:
        claims = self.inner.verify(token)
        if claims.client_id in self.denied:
            raise InvalidToken("the token is revoked")
        return claims


class DenyListAuthentication(BearerTokenAuthentication):
    def get_verifier(self) -> TokenVerifier:
        return DenyListVerifier(get_verifier())  # type: ignore[return-value]


class ApiDenyList(ApiItems):
    authentication_classes = [DenyListAuthentication]


urlpatterns = [
    path("api/deny-list", ApiDenyList.as_view()),
    path("plain/read", read_view),
    path("plain/any", any_token_view),
    path("plain/async", async_read_view),
    path("plain/items", ItemsView.as_view()),
    path("api/items", ApiItems.as_view()),
    path("api/careless", ApiItemsCarelessHandler.as_view()),
    path("api/misconfigured", ApiNoScopes.as_view()),
    path("plain/dpop-only", dpop_only_view),
    path("plain/dpop-only-items", DPoPOnlyItems.as_view()),
    path("api/dpop-only", ApiDPoPOnlyItems.as_view()),
]
