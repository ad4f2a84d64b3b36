"""One error format for the management API, whatever raised the error.

``{"code": <gRPC status>, "message": "…", "details": [{"error_code": "INVALID_ARGUMENT",
"field_violations": [{"field": "scopes[1]", "description": "…"}]}]}``
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

# HTTP status -> (gRPC code, gRPC name)
GRPC = {
    400: (3, "INVALID_ARGUMENT"),
    401: (16, "UNAUTHENTICATED"),
    403: (7, "PERMISSION_DENIED"),
    404: (5, "NOT_FOUND"),
    405: (12, "UNIMPLEMENTED"),
    406: (3, "INVALID_ARGUMENT"),
    409: (6, "ALREADY_EXISTS"),
    413: (8, "RESOURCE_EXHAUSTED"),
    415: (3, "INVALID_ARGUMENT"),
    429: (8, "RESOURCE_EXHAUSTED"),
    500: (13, "INTERNAL"),
    503: (14, "UNAVAILABLE"),
}
FAILED_PRECONDITION = (9, "FAILED_PRECONDITION")


class FieldViolation(serializers.Serializer):
    field = serializers.CharField()
    description = serializers.CharField()


class ErrorDetail(serializers.Serializer):
    error_code = serializers.CharField(help_text="the gRPC status name, e.g. INVALID_ARGUMENT")
    field_violations = FieldViolation(many=True, required=False)  # left out when there are none


class Error(serializers.Serializer):
    """Every error of the API: gRPC status code and name, a message, field violations."""

    code = serializers.IntegerField(help_text="gRPC status code (3, 5, 8, 16, …)")
    message = serializers.CharField()
    details = ErrorDetail(many=True)


def error_body(
    http_status: int,
    message: str,
    field_violations: list[dict[str, str]] | None = None,
    grpc: tuple[int, str] | None = None,
) -> dict[str, Any]:
    code, name = grpc or GRPC.get(http_status, (2, "UNKNOWN"))
    detail: dict[str, Any] = {"error_code": name}
    if field_violations:
        detail["field_violations"] = field_violations
    return Error({"code": code, "message": message, "details": [detail]}).data


def flatten(errors: Any, prefix: str = "") -> list[dict[str, str]]:
    """Field violations from DRF's or Django's nested error structures (``scopes[1]``)."""
    violations: list[dict[str, str]] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            if isinstance(key, int):
                name = f"{prefix}[{key}]"
            elif key in ("non_field_errors", "__all__"):
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            violations.extend(flatten(value, name))
    elif isinstance(errors, list | tuple):
        for index, value in enumerate(errors):
            if isinstance(value, dict | list) and not _is_message_list(value):
                violations.extend(flatten(value, f"{prefix}[{index}]"))
            else:
                violations.extend(flatten(value, prefix))
    else:
        violations.append({"field": prefix, "description": str(errors)})
    return violations


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def django_validation_violations(exc: DjangoValidationError) -> list[dict[str, str]]:
    if hasattr(exc, "error_dict"):
        return flatten(
            {key: [m for e in errs for m in e.messages] for key, errs in exc.error_dict.items()}
        )
    return [{"field": "", "description": message} for message in exc.messages]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler: every error of the API in one format."""
    headers: dict[str, str] = {}
    if isinstance(exc, DjangoValidationError):
        violations = django_validation_violations(exc)
        is_limit = getattr(exc, "code", None) == "limit"
        grpc = FAILED_PRECONDITION if is_limit else None
        message = violations[0]["description"] if is_limit else "request has invalid fields"
        return Response(
            error_body(400, message, None if is_limit else violations, grpc), status=400
        )
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return Response(error_body(404, "not found"), status=404)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(413, "request body is larger than 1 MiB"), status=413)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, DatabaseError):
        return Response(
            error_body(503, "the service is temporarily unavailable; try again shortly"),
            status=503,
            headers={"Retry-After": "5"},
        )
    if not isinstance(exc, exceptions.APIException):
        return None
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    extra_headers = getattr(exc, "headers", None)
    if isinstance(extra_headers, dict):
        headers.update(extra_headers)
    http_status = exc.status_code
    if isinstance(exc, exceptions.ValidationError):
        return Response(
            error_body(400, "request has invalid fields", flatten(exc.detail)),
            status=400,
            headers=headers,
        )
    detail = exc.detail
    message = str(detail) if not isinstance(detail, dict | list) else "request failed"
    if isinstance(exc, exceptions.ParseError):
        message = "request body is not valid JSON"
    return Response(error_body(http_status, message), status=http_status, headers=headers)


def json_error(http_status: int, message: str) -> JsonResponse:
    """The same format outside DRF (URL not found under /api/v1, middleware refusals)."""
    return JsonResponse(error_body(http_status, message), status=http_status)


def not_found(request: Any, exception: Exception | None = None) -> JsonResponse:
    return json_error(status.HTTP_404_NOT_FOUND, "not found")
