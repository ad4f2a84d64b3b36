"""The deployment API's views: the same kit, through its two Django adapters.

* ``create_deployment`` is a plain function view guarded by ``require_scopes``.
* ``DeploymentList`` is a DRF view with ``BearerTokenAuthentication`` and ``HasScopes``.

Both find the verified token's claims on the request (``request.token_claims``
for plain Django, ``request.auth`` for DRF) and answer RFC 6750 errors
(401 ``invalid_token``, 403 ``insufficient_scope``) without any code here.
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from m2m_auth_kit.guards import BearerTokenAuthentication, HasScopes, require_scopes
from m2m_auth_kit.verify import Claims

# A demo store: in memory, per process. Deployments are kept per organization
# (the token's ``oid``), so one customer never sees another's.
_deployments: dict[str | None, list[dict[str, Any]]] = {}
_lock = threading.Lock()
_ids = itertools.count(1)


def _bad_request(description: str) -> JsonResponse:
    return JsonResponse({"error": "invalid_request", "error_description": description}, status=400)


@require_scopes("deploy:applications")
def create_deployment(request: HttpRequest) -> HttpResponse:
    """POST /deployments ``{"application", "version", "environment"?}``: queue a deployment."""
    claims: Claims = request.token_claims  # type: ignore[attr-defined]
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return _bad_request("the body is not JSON")
    if not isinstance(body, dict):
        return _bad_request("the body must be a JSON object")
    fields = {}
    for name, default in (("application", None), ("version", None), ("environment", "production")):
        value = body.get(name, default)
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            return _bad_request(f"{name} must be a non-empty string of at most 100 characters")
        fields[name] = value
    deployment = {
        "id": f"dep_{next(_ids)}",
        **fields,
        "status": "queued",
        "requested_by": claims.client_id,
        # A custom claim registered on the client travels in the token.
        "repository": claims.raw.get("github_repository"),
        "create_time": datetime.now(UTC).isoformat(),
    }
    with _lock:
        _deployments.setdefault(claims.organization_id, []).append(deployment)
    return JsonResponse({"deployment": deployment}, status=201)


class DeploymentList(APIView):
    """GET /deployments: the caller's organization's deployments, newest first."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasScopes]
    required_scopes = ["read:deployments"]

    def get(self, request: Request) -> Response:
        """List the deployments of the token's organization."""
        claims: Claims = request.auth
        with _lock:
            mine = list(reversed(_deployments.get(claims.organization_id, [])))
        return Response({"deployments": mine, "client_id": claims.client_id})


_list_deployments = DeploymentList.as_view()


# Both inner views authenticate by bearer token only (never a cookie), so there is
# nothing for CSRF protection to guard should someone add the middleware.
@csrf_exempt
def deployments(request: HttpRequest) -> HttpResponse:
    """/deployments: POST to ``create_deployment``, GET and HEAD to ``DeploymentList``."""
    if request.method == "POST":
        return create_deployment(request)
    if request.method in ("GET", "HEAD"):
        return _list_deployments(request)
    return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
