"""What the OpenAPI document (drf-spectacular) needs beyond the serializers: the Bearer scheme
and each operation's name, summary, request, responses and errors.

The shapes are the serializers the views render with (``portal.api.serializers``, and
``portal.api.errors.Error``); ``annotate()`` attaches them to the views when ``portal.api.urls``
is imported. tests/api/test_schema.py validates real answers against the document, and
tests/e2e/test_openapi_fuzz.py runs schemathesis against it over HTTP.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view

from clients import activity
from portal.api import serializers as s
from portal.api import views
from portal.api.errors import Error

# --- Security scheme -----------------------------------------------------------------------------


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The management API's bearer authentication (the kit's, with the live-client check): a JWT
    from our token endpoint, of a management client, scope management."""

    target_class = "portal.api.authentication.ManagementTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "An access token from POST /oauth/token (client_credentials) for a management "
                "client: audience /api/v1, scope management. Refused once revoked "
                "(POST /oauth/revoke) or once its client is deleted."
            ),
        }


# --- Operations ----------------------------------------------------------------------------------

# Every operation may answer these (auth, tenancy, body, method, rate limit, database down).
ERRORS = {code: Error for code in (400, 401, 403, 404, 405, 406, 413, 415, 429, 503)}
# What a DELETE answers: ``{}``. (An empty serializer would be documented as "no body".)
EMPTY = {"type": "object", "additionalProperties": False, "description": "an empty object, {}"}
PAGING = [
    OpenApiParameter("page_size", int, description="1 to 100 (default 10)"),
    OpenApiParameter("page_token", str, description="next_page_token of the previous page"),
]


def _op(
    operation_id: str, summary: str, response: type | dict, status: int = 200, **kwargs: object
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
    """Attach the operations to the views (idempotent)."""
    extend_schema_view(
        get=_op("list_organizations", "List organizations", s.OrganizationList, parameters=PAGING),
        post=_op(
            "create_organization",
            "Create an organization",
            s.OrganizationOne,
            201,
            request=s.OrganizationInput,
        ),
    )(views.OrganizationListView)
    extend_schema_view(
        get=_op("get_organization", "Get an organization", s.OrganizationOne),
        patch=_op(
            "update_organization",
            "Update an organization",
            s.OrganizationOne,
            request=s.OrganizationPatch,
        ),
    )(views.OrganizationDetailView)
    extend_schema_view(
        get=_op("list_clients", "List an organization's clients", s.ClientList, parameters=PAGING),
        post=_op(
            "create_client",
            "Register a client (its first secret is returned once)",
            s.ClientCreated,
            201,
            request=s.ClientInput,
        ),
    )(views.ClientListView)
    extend_schema_view(
        get=_op(
            "list_audit_events",
            "List an organization's audit events, newest first",
            s.AuditEventList,
            parameters=[
                *PAGING,
                OpenApiParameter("client_id", str, description="only this client's events"),
                OpenApiParameter("actor_id", str, description="only this person's (a user id)"),
                OpenApiParameter(
                    "kind", str, enum=list(activity.KINDS), description="only this kind"
                ),
                OpenApiParameter("since", OpenApiTypes.DATETIME, description="inclusive"),
                OpenApiParameter("until", OpenApiTypes.DATETIME, description="exclusive"),
            ],
        ),
    )(views.AuditEventListView)
    usage_parameters = [
        OpenApiParameter("start", OpenApiTypes.DATETIME, description="RFC 3339; inclusive"),
        OpenApiParameter("end", OpenApiTypes.DATETIME, description="RFC 3339; exclusive"),
        OpenApiParameter(
            "granularity", str, enum=["hour", "day"], description="hour (default) or day"
        ),
    ]
    extend_schema_view(
        get=_op(
            "get_organization_usage",
            "Tokens issued and requests refused per hour or day in an organization",
            s.Usage,
            parameters=usage_parameters,
        ),
    )(views.OrganizationUsageView)
    extend_schema_view(
        get=_op(
            "get_client_usage",
            "Tokens issued and requests refused per hour or day by a client",
            s.Usage,
            parameters=usage_parameters,
        ),
    )(views.ClientUsageView)
    extend_schema_view(
        get=_op("get_client", "Get a client", s.ClientOne),
        patch=_op("update_client", "Update a client", s.ClientOne, request=s.ClientPatch),
        delete=_op("delete_client", "Delete a client and its secrets", EMPTY),
    )(views.ClientDetailView)
    extend_schema_view(
        get=_op(
            "list_secrets",
            "List a client's secrets (unused=true: those unused for 90 days)",
            s.SecretList,
            parameters=[s.SecretQuery],
        ),
        post=_op(
            "add_secret",
            "Add a secret (at most 5; returned once); the body may be empty",
            s.SecretCreated,
            201,
            request=s.SecretInput,
        ),
    )(views.SecretListView)
    extend_schema_view(
        get=_op("get_secret", "Get a secret", s.SecretOne),
        delete=_op("delete_secret", "Delete a secret", EMPTY),
    )(views.SecretDetailView)
    extend_schema_view(
        post=_op(
            "report_leaked_secrets",
            "Report secrets found in public: each of ours is revoked (or only mailed, per its "
            "organization's on_leak); results in the request's order",
            s.ReportLeakResults,
            request=s.ReportLeakInput,
        ),
    )(views.ReportLeakView)
    extend_schema_view(
        get=_op("list_keys", "List a client's public keys (private_key_jwt)", s.KeyList),
        post=_op(
            "add_key",
            "Register a public key (JWK, public members only) for private_key_jwt",
            s.KeyOne,
            201,
            request=s.KeyInput,
        ),
    )(views.KeyListView)
    extend_schema_view(
        get=_op("get_key", "Get a public key", s.KeyOne),
        delete=_op("delete_key", "Remove a public key; assertions signed with it fail", EMPTY),
    )(views.KeyDetailView)
    extend_schema_view(
        get=_op(
            "list_trust_policies",
            "List a client's trust policies (workload identity federation)",
            s.TrustPolicyList,
        ),
        post=_op(
            "add_trust_policy",
            "Add a trust policy (at most 10): which external workload tokens (GitHub Actions, "
            "GitLab CI, Kubernetes, any OIDC issuer) get this client's tokens",
            s.TrustPolicyOne,
            201,
            request=s.TrustPolicyInput,
        ),
    )(views.TrustPolicyListView)
    extend_schema_view(
        get=_op("get_trust_policy", "Get a trust policy", s.TrustPolicyOne),
        patch=_op(
            "update_trust_policy",
            "Change a trust policy; the next token request sees it",
            s.TrustPolicyOne,
            request=s.TrustPolicyPatch,
        ),
        delete=_op(
            "delete_trust_policy", "Remove a trust policy; the tokens it admitted fail", EMPTY
        ),
    )(views.TrustPolicyDetailView)

    for prefix, whose in (("", "an organization's"), ("provider_", "the provider's own")):
        _annotate_webhooks(prefix, whose)


def _annotate_webhooks(prefix: str, whose: str) -> None:
    """The webhook operations, under an organization or (``provider_``) the provider's own."""
    cls = "Provider" if prefix else ""
    extend_schema_view(
        get=_op(
            f"list_{prefix}webhook_endpoints",
            f"List {whose} webhook endpoints",
            s.WebhookEndpointList,
            parameters=PAGING,
        ),
        post=_op(
            f"create_{prefix}webhook_endpoint",
            "Register a webhook endpoint; its signing secret (whsec_…) is returned once",
            s.WebhookEndpointCreated,
            201,
            request=s.WebhookEndpointInput,
        ),
    )(getattr(views, cls + "WebhookEndpointListView"))
    extend_schema_view(
        get=_op(f"get_{prefix}webhook_endpoint", "Get a webhook endpoint", s.WebhookEndpointOne),
        patch=_op(
            f"update_{prefix}webhook_endpoint",
            "Change a webhook endpoint (URL, event types, description, enabled)",
            s.WebhookEndpointOne,
            request=s.WebhookEndpointPatch,
        ),
        delete=_op(f"delete_{prefix}webhook_endpoint", "Delete a webhook endpoint", EMPTY),
    )(getattr(views, cls + "WebhookEndpointDetailView"))
    extend_schema_view(
        post=_op(
            f"rotate_{prefix}webhook_secret",
            "A new signing secret (returned once); the previous one also signs for 24 hours",
            s.SigningSecret,
            request=None,
        ),
    )(getattr(views, cls + "WebhookSecretRotateView"))
    extend_schema_view(
        post=_op(
            f"test_{prefix}webhook_endpoint",
            "Send a webhook.test event to this endpoint",
            s.WebhookTestSent,
            202,
            request=None,
        ),
    )(getattr(views, cls + "WebhookTestView"))
    extend_schema_view(
        get=_op(
            f"list_{prefix}webhook_deliveries",
            "List an endpoint's delivery attempts, newest first",
            s.WebhookDeliveryList,
            parameters=PAGING,
        ),
    )(getattr(views, cls + "WebhookDeliveryListView"))
