"""Input parsing and output shapes of the management API. They decide nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from clients.models import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    ApiClient,
    ClientKey,
    ClientSecret,
    Organization,
)


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class StrictCharField(serializers.CharField):
    """A string, and only a string: no numbers or booleans coerced to text."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An integer, and only an integer: no strings, floats or booleans."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is an error, not a silent no-op."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["the request body must be a JSON object"]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class CustomClaimSerializer(StrictSerializer):
    key = StrictCharField(allow_blank=True)
    value = StrictCharField(allow_blank=True)


class OrganizationInput(StrictSerializer):
    display_name = StrictCharField(max_length=MAX_NAME_LENGTH)
    external_id = StrictCharField(max_length=128, required=False, allow_null=True, allow_blank=True)


class OrganizationPatch(OrganizationInput):
    display_name = StrictCharField(max_length=MAX_NAME_LENGTH, required=False)


class ClientInput(StrictSerializer):
    name = StrictCharField(max_length=MAX_NAME_LENGTH)
    description = StrictCharField(
        max_length=MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True
    )
    scopes = serializers.ListField(child=StrictCharField(allow_blank=True), required=False)
    audience = serializers.ListField(child=StrictCharField(allow_blank=True), required=False)
    custom_claims = serializers.ListField(child=CustomClaimSerializer(), required=False)
    expiry = StrictIntegerField(required=False)


class ClientPatch(ClientInput):
    name = StrictCharField(max_length=MAX_NAME_LENGTH, required=False)


class SecretInput(StrictSerializer):
    expire_time = serializers.DateTimeField(required=False, allow_null=True)
    expiry_seconds = StrictIntegerField(required=False, min_value=60, max_value=10 * 365 * 86400)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("expire_time") is not None and "expiry_seconds" in attrs:
            raise serializers.ValidationError(
                {"expire_time": ["give expire_time or expiry_seconds, not both"]}
            )
        return attrs


class KeyInput(StrictSerializer):
    # The JWK itself is checked by the service (clients.jwk), the one place that knows JWKs.
    jwk = serializers.JSONField()


def organization_json(organization: Organization) -> dict[str, Any]:
    return {
        "id": organization.id,
        "display_name": organization.display_name,
        "external_id": organization.external_id,
        "create_time": rfc3339(organization.create_time),
        "update_time": rfc3339(organization.update_time),
    }


def secret_json(secret: ClientSecret) -> dict[str, Any]:
    return {
        "id": secret.id,
        "create_time": rfc3339(secret.create_time),
        "update_time": rfc3339(secret.update_time),
        "secret_suffix": secret.secret_suffix,
        "status": secret.effective_status,
        "last_used_time": rfc3339(secret.last_used_time),
        "expire_time": rfc3339(secret.expire_time),
    }


def key_json(key: ClientKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "kid": key.kid,
        "kty": key.kty,
        "alg": key.alg,
        "create_time": rfc3339(key.create_time),
        "jwk": key.jwk,
    }


def client_json(client: ApiClient) -> dict[str, Any]:
    return {
        "client_id": client.id,
        "secrets": [secret_json(secret) for secret in client.secrets.all()],
        "keys": [key_json(key) for key in client.keys.all()],
        "name": client.name,
        "description": client.description,
        "organization_id": client.organization_id,
        "create_time": rfc3339(client.create_time),
        "update_time": rfc3339(client.update_time),
        "scopes": client.scopes,
        "audience": client.audience,
        "custom_claims": client.custom_claims,
        "expiry": client.expiry,
    }
