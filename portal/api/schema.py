"""The management API's OpenAPI description (drf-spectacular): shapes, errors, Bearer scheme.

The views render hand-written JSON (``serializers.*_json``), so the response shapes are declared
here as documentation serializers, and attached to the views with ``extend_schema_view`` when
``portal.api.urls`` is imported. tests/e2e/test_openapi_fuzz.py runs schemathesis against the
result over HTTP, so a shape that drifts from what the API does fails the suite.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers

from portal.api import serializers as s
from portal.api import views

# --- Security scheme -----------------------------------------------------------------------------


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The kit's BearerTokenAuthentication: a JWT from our token endpoint, scope management."""

    target_class = "m2m_auth_kit.guards.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "An access token from POST /oauth/token (client_credentials) for a management "
                "client: audience /api/v1, scope management."
            ),
        }


# --- Shapes --------------------------------------------------------------------------------------


class FieldViolation(serializers.Serializer):
    field = serializers.CharField()
    description = serializers.CharField()


class ErrorDetail(serializers.Serializer):
    error_code = serializers.CharField(help_text="the gRPC status name, e.g. INVALID_ARGUMENT")
    field_violations = FieldViolation(many=True, required=False)


class Error(serializers.Serializer):
    """Every error of the API: gRPC status code and name, a message, field violations."""

    code = serializers.IntegerField(help_text="gRPC status code (3, 5, 8, 16, …)")
    message = serializers.CharField()
    details = ErrorDetail(many=True)


class Organization(serializers.Serializer):
    id = serializers.CharField()
    display_name = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    create_time = serializers.DateTimeField()
    update_time = serializers.DateTimeField()


class Secret(serializers.Serializer):
    id = serializers.CharField()
    create_time = serializers.DateTimeField()
    update_time = serializers.DateTimeField()
    secret_suffix = serializers.CharField()
    status = serializers.ChoiceField(choices=["ACTIVE", "INACTIVE", "EXPIRED"])
    last_used_time = serializers.DateTimeField(allow_null=True)
    expire_time = serializers.DateTimeField(allow_null=True)


class CustomClaim(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField()


class Key(serializers.Serializer):
    id = serializers.CharField()
    kid = serializers.CharField()
    kty = serializers.ChoiceField(choices=["RSA", "EC"])
    alg = serializers.CharField()
    create_time = serializers.DateTimeField()
    jwk = serializers.DictField(help_text="the public members only")


class Client(serializers.Serializer):
    client_id = serializers.CharField()
    secrets = Secret(many=True)
    keys = Key(many=True, help_text="public keys for private_key_jwt")
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    organization_id = serializers.CharField()
    create_time = serializers.DateTimeField()
    update_time = serializers.DateTimeField()
    scopes = serializers.ListField(child=serializers.CharField())
    audience = serializers.ListField(child=serializers.CharField())
    custom_claims = CustomClaim(many=True)
    expiry = serializers.IntegerField()


class Paging(serializers.Serializer):
    next_page_token = serializers.CharField(allow_blank=True)
    prev_page_token = serializers.CharField(allow_blank=True)
    total_size = serializers.IntegerField()


class OrganizationList(Paging):
    organizations = Organization(many=True)


class OrganizationOne(serializers.Serializer):
    organization = Organization()


class ClientList(Paging):
    clients = Client(many=True)


class ClientOne(serializers.Serializer):
    client = Client()


class ClientCreated(ClientOne):
    plain_secret = serializers.CharField(help_text="shown in this response only")


class SecretList(serializers.Serializer):
    secrets = Secret(many=True)


class SecretOne(serializers.Serializer):
    secret = Secret()


class SecretCreated(SecretOne):
    plain_secret = serializers.CharField(help_text="shown in this response only")


class KeyList(serializers.Serializer):
    keys = Key(many=True)


class KeyOne(serializers.Serializer):
    key = Key()


class Empty(serializers.Serializer):
    """``{}``"""


# Every operation may answer these (auth, tenancy, body, method, rate limit, database down).
ERRORS = {code: Error for code in (400, 401, 403, 404, 405, 406, 413, 415, 429, 503)}
PAGING = [
    OpenApiParameter("page_size", int, description="1 to 100 (default 10)"),
    OpenApiParameter("page_token", str, description="next_page_token of the previous page"),
]


def _op(
    operation_id: str, summary: str, response: type, status: int = 200, **kwargs: object
) -> object:
    responses = {status: response, **ERRORS}
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=summary,
        responses=responses,
        **kwargs,
    )


def annotate() -> None:
    """Attach the shapes above to the views (idempotent)."""
    extend_schema_view(
        get=_op("list_organizations", "List organizations", OrganizationList, parameters=PAGING),
        post=_op(
            "create_organization",
            "Create an organization",
            OrganizationOne,
            201,
            request=s.OrganizationInput,
        ),
    )(views.OrganizationListView)
    extend_schema_view(
        get=_op("get_organization", "Get an organization", OrganizationOne),
        patch=_op(
            "update_organization",
            "Update an organization",
            OrganizationOne,
            request=s.OrganizationPatch,
        ),
    )(views.OrganizationDetailView)
    extend_schema_view(
        get=_op("list_clients", "List an organization's clients", ClientList, parameters=PAGING),
        post=_op(
            "create_client",
            "Register a client (its first secret is returned once)",
            ClientCreated,
            201,
            request=s.ClientInput,
        ),
    )(views.ClientListView)
    extend_schema_view(
        get=_op("get_client", "Get a client", ClientOne),
        patch=_op("update_client", "Update a client", ClientOne, request=s.ClientPatch),
        delete=_op("delete_client", "Delete a client and its secrets", Empty),
    )(views.ClientDetailView)
    extend_schema_view(
        get=_op("list_secrets", "List a client's secrets", SecretList),
        post=_op(
            "add_secret",
            "Add a secret (at most 5; returned once); the body may be empty",
            SecretCreated,
            201,
            request=s.SecretInput,
        ),
    )(views.SecretListView)
    extend_schema_view(
        get=_op("get_secret", "Get a secret", SecretOne),
        delete=_op("delete_secret", "Delete a secret", Empty),
    )(views.SecretDetailView)
    extend_schema_view(
        get=_op("list_keys", "List a client's public keys (private_key_jwt)", KeyList),
        post=_op(
            "add_key",
            "Register a public key (JWK, public members only) for private_key_jwt",
            KeyOne,
            201,
            request=s.KeyInput,
        ),
    )(views.KeyListView)
    extend_schema_view(
        get=_op("get_key", "Get a public key", KeyOne),
        delete=_op("delete_key", "Remove a public key; assertions signed with it fail", Empty),
    )(views.KeyDetailView)
