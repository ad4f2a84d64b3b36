"""Input parsing and output shapes of the management API. They decide nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rest_framework import serializers

from clients import activity
from clients.models import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    ApiClient,
    ClientSecret,
    Organization,
)
from oauth import usage


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


class StrictBooleanField(serializers.BooleanField):
    """true or false, and only those: no "yes", 1 or "true" coerced."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


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
    """A claim added to every token of the client: a key and a string value."""

    key = StrictCharField(allow_blank=True)
    value = StrictCharField(allow_blank=True)


MAX_QUOTA = 2_000_000_000  # the column is a 32-bit integer


class TokenQuotaInput(StrictSerializer):
    """Tokens per hour and per UTC day (null or left out: no quota for that window); ``mode``
    enforce (refuse past it with 429, the default) or observe (count and warn only)."""

    per_hour = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_QUOTA)
    per_day = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_QUOTA)
    mode = serializers.ChoiceField(choices=["enforce", "observe"], required=False)


class TokenQuotaSerializer(serializers.Serializer):
    per_hour = serializers.IntegerField(allow_null=True, help_text="tokens per clock hour (UTC)")
    per_day = serializers.IntegerField(allow_null=True, help_text="tokens per UTC day")
    mode = serializers.ChoiceField(
        choices=["enforce", "observe"],
        help_text="enforce: refuse past the quota (429); observe: count and warn only",
    )


class OrganizationInput(StrictSerializer):
    display_name = StrictCharField(max_length=MAX_NAME_LENGTH)
    external_id = StrictCharField(max_length=128, required=False, allow_null=True, allow_blank=True)


class OrganizationPatch(OrganizationInput):
    display_name = StrictCharField(max_length=MAX_NAME_LENGTH, required=False)
    on_leak = serializers.ChoiceField(
        choices=Organization.OnLeak.values,
        required=False,
        help_text="revoke: a reported leaked secret is revoked at once; notify: only mailed",
    )
    secret_max_lifetime_days = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="new secrets expire after at most this many days; null: no own limit",
    )
    token_quota = TokenQuotaInput(
        required=False,
        allow_null=True,
        help_text="the caps on the organization's tokens (null: none); its clients' quotas "
        "must stay within them",
    )


class ReportLeakInput(StrictSerializer):
    """Secrets a scanner found in public (``POST /api/v1/secrets:report-leak``)."""

    secrets = serializers.ListField(
        child=StrictCharField(max_length=512), min_length=1, max_length=100
    )
    url = StrictCharField(required=False, allow_blank=True, max_length=2048)
    source = StrictCharField(required=False, allow_blank=True, max_length=64)


class ClientInput(StrictSerializer):
    name = StrictCharField(max_length=MAX_NAME_LENGTH)
    description = StrictCharField(
        max_length=MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True
    )
    scopes = serializers.ListField(child=StrictCharField(allow_blank=True), required=False)
    audience = serializers.ListField(child=StrictCharField(allow_blank=True), required=False)
    custom_claims = serializers.ListField(child=CustomClaimSerializer(), required=False)
    expiry = StrictIntegerField(required=False)
    dpop_bound_access_tokens = StrictBooleanField(
        required=False,
        help_text="RFC 9449 §5.2: refuse token requests without a DPoP proof (default false)",
    )


class ClientPatch(ClientInput):
    name = StrictCharField(max_length=MAX_NAME_LENGTH, required=False)
    token_quota = TokenQuotaInput(
        required=False,
        allow_null=True,
        help_text="the client's token quota (null: none), at most its organization's caps",
    )


class SecretInput(StrictSerializer):
    expire_time = serializers.DateTimeField(required=False, allow_null=True)
    expiry_seconds = StrictIntegerField(required=False, min_value=60, max_value=10 * 365 * 86400)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("expire_time") is not None and "expiry_seconds" in attrs:
            raise serializers.ValidationError(
                {"expire_time": ["give expire_time or expiry_seconds, not both"]}
            )
        return attrs


class SecretQuery(serializers.Serializer):
    """The filter of a client's secret list (query parameter; optional)."""

    unused = serializers.BooleanField(
        required=False, help_text="true: only secrets unused for 90 days (revoke them)"
    )


class KeyInput(StrictSerializer):
    # The JWK itself is checked by the service (clients.jwk), the one place that knows JWKs.
    jwk = serializers.JSONField()


class AuditEventQuery(serializers.Serializer):
    """The filters of the audit-event list (query parameters; all optional)."""

    client_id = serializers.CharField(required=False, max_length=32)
    actor_id = serializers.CharField(
        required=False, max_length=64, help_text="a person's user id (actor_type user)"
    )
    kind = serializers.ChoiceField(
        required=False, choices=list(activity.KINDS), help_text="the action's part before its dot"
    )
    since = serializers.DateTimeField(required=False, help_text="RFC 3339; inclusive")
    until = serializers.DateTimeField(required=False, help_text="RFC 3339; exclusive")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            raise serializers.ValidationError({"until": ["until must come after since"]})
        return data


class UsageQuery(serializers.Serializer):
    """The range of a usage report (query parameters)."""

    start = serializers.DateTimeField(
        required=False,
        help_text="RFC 3339; rounded down to the hour or day (default: 24 hours "
        "before end for hour, 30 days for day)",
    )
    end = serializers.DateTimeField(required=False, help_text="RFC 3339; exclusive (default: now)")
    granularity = serializers.ChoiceField(choices=["hour", "day"], required=False, default="hour")

    MAX_BUCKETS = 24 * 31

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        granularity = data["granularity"]
        end = data.get("end") or usage.utc_now()
        default_span = timedelta(days=1) if granularity == "hour" else timedelta(days=30)
        start = data.get("start") or end - default_span
        if end <= start:
            raise serializers.ValidationError({"end": ["end must come after start"]})
        if (end - start) / usage.GRANULARITIES[granularity] > self.MAX_BUCKETS:
            raise serializers.ValidationError(
                {"start": [f"at most {self.MAX_BUCKETS} {granularity}s per request"]}
            )
        return {"start": start, "end": end, "granularity": granularity}


class ClaimConditionSerializer(StrictSerializer):
    """A claim the external token must carry: its name (dots reach into objects) and the value,
    exact or with ``*`` wildcards (any run of characters without a colon)."""

    claim = StrictCharField(allow_blank=True)
    value = StrictCharField(allow_blank=True)


class TrustPolicyInput(StrictSerializer):
    # What a policy may say is checked by the model (clients.trust), the one place that knows.
    name = StrictCharField(max_length=MAX_NAME_LENGTH)
    issuer = StrictCharField(allow_blank=True)
    jwks = serializers.JSONField(required=False, allow_null=True)
    audience = StrictCharField(required=False, allow_blank=True)
    subject = StrictCharField(required=False, allow_blank=True)
    claim_conditions = serializers.ListField(child=ClaimConditionSerializer(), required=False)
    max_token_age = StrictIntegerField(required=False)


class TrustPolicyPatch(TrustPolicyInput):
    name = StrictCharField(max_length=MAX_NAME_LENGTH, required=False)
    issuer = StrictCharField(allow_blank=True, required=False)


class WebhookEndpointInput(StrictSerializer):
    url = StrictCharField(max_length=2000, help_text="https:// on a public address")
    event_types = serializers.ListField(
        child=StrictCharField(),
        required=False,
        help_text="the event types wanted; empty (the default): every type",
    )
    description = StrictCharField(
        max_length=MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True
    )
    enabled = StrictBooleanField(required=False)


class WebhookEndpointPatch(WebhookEndpointInput):
    url = StrictCharField(max_length=2000, required=False)


# --- Output: the response shapes ----------------------------------------------------------------
# Each shape is declared once, here: the views render with it and drf-spectacular documents it
# (``XSerializer`` is the component ``X``). The JSON's keys come in the order of the fields.


class Rfc3339Field(serializers.DateTimeField):
    """A time as the API writes it: UTC, always six digits of microseconds, ``Z``."""

    def to_representation(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class OrganizationSerializer(serializers.Serializer):
    id = serializers.CharField()
    display_name = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    create_time = Rfc3339Field()
    update_time = Rfc3339Field()
    on_leak = serializers.ChoiceField(choices=Organization.OnLeak.values)
    secret_max_lifetime_days = serializers.IntegerField(allow_null=True)
    token_quota = TokenQuotaSerializer(allow_null=True, help_text="null: no quota")


class LeakSerializer(serializers.Serializer):
    """Where a secret scanner found the secret."""

    url = serializers.CharField(source="leak_url")
    source = serializers.CharField(source="leak_source")
    report_time = Rfc3339Field(source="leak_time")


class SecretSerializer(serializers.Serializer):
    id = serializers.CharField()
    create_time = Rfc3339Field()
    update_time = Rfc3339Field()
    secret_suffix = serializers.CharField()
    status = serializers.ChoiceField(
        choices=[*ClientSecret.Status.values, "EXPIRED"], source="effective_status"
    )
    last_used_time = Rfc3339Field(allow_null=True)
    expire_time = Rfc3339Field(allow_null=True)
    unused = serializers.BooleanField(
        source="is_unused",
        help_text="unused (never, or not since) for 90 days: consider revoking it",
    )
    leak = serializers.SerializerMethodField(help_text="null unless reported leaked")

    def get_leak(self, secret: ClientSecret) -> dict[str, Any] | None:
        return LeakSerializer(secret).data if secret.leak_time is not None else None


class KeySerializer(serializers.Serializer):
    id = serializers.CharField()
    kid = serializers.CharField()
    kty = serializers.ChoiceField(choices=["RSA", "EC"])
    alg = serializers.CharField()
    create_time = Rfc3339Field()
    jwk = serializers.DictField(help_text="the public members only")


class TrustPolicySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    issuer = serializers.CharField(help_text="the iss of the external tokens it accepts")
    jwks = serializers.DictField(
        allow_null=True, help_text="a static JWK Set; null: the issuer's discovery document"
    )
    audience = serializers.CharField(help_text="the aud the external token must carry")
    subject = serializers.CharField(
        allow_blank=True, help_text="exact or with * wildcards; empty: no subject condition"
    )
    claim_conditions = ClaimConditionSerializer(many=True)
    max_token_age = serializers.IntegerField(help_text="seconds since the token's iat")
    create_time = Rfc3339Field()
    update_time = Rfc3339Field()


class ClientSerializer(serializers.Serializer):
    client_id = serializers.CharField(source="id")
    secrets = SecretSerializer(many=True)
    keys = KeySerializer(many=True, help_text="public keys for private_key_jwt")
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    organization_id = serializers.CharField()
    create_time = Rfc3339Field()
    update_time = Rfc3339Field()
    scopes = serializers.ListField(child=serializers.CharField())
    audience = serializers.ListField(child=serializers.CharField())
    custom_claims = CustomClaimSerializer(many=True)
    expiry = serializers.IntegerField()
    dpop_bound_access_tokens = serializers.BooleanField(
        help_text="every token of this client is DPoP-bound (RFC 9449 §5.2)"
    )
    token_quota = TokenQuotaSerializer(allow_null=True, help_text="null: no quota")


# Bound once: a serializer made per client would copy its nested fields for each client.
_client_serializer = ClientSerializer()


def client_json(client: ApiClient) -> dict[str, Any]:
    """One client as the API shows it (bench/seed_scale.py and tests render pages with it)."""
    return _client_serializer.to_representation(client)


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    time = Rfc3339Field()
    action = serializers.CharField()
    summary = serializers.SerializerMethodField(
        help_text="the event in a sentence, with the names it had then"
    )
    actor_type = serializers.ChoiceField(choices=["user", "client", "system"])
    actor_id = serializers.CharField(allow_blank=True)
    actor_display = serializers.CharField(allow_blank=True)
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    client_id = serializers.CharField(allow_blank=True)
    source_ip = serializers.IPAddressField(allow_null=True)
    details = serializers.DictField(
        help_text="what the event kept: names as they were, before and after of changes"
    )

    def get_summary(self, event: Any) -> str:
        return activity.event_sentence(event)


# Envelopes: what each operation answers.


class Page(serializers.Serializer):
    """One page of a list. A subclass declares the items, which come first in the JSON."""

    next_page_token = serializers.CharField(allow_blank=True)
    prev_page_token = serializers.CharField(allow_blank=True)
    total_size = serializers.IntegerField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # DRF puts a base class's fields first; the paging fields go after the items.
        fields = super().get_fields()
        for name in Page._declared_fields:
            fields[name] = fields.pop(name)
        return fields


class PlainSecret(serializers.Serializer):
    """Follows the created object: the one response that holds the secret itself."""

    plain_secret = serializers.CharField(help_text="shown in this response only")


class OrganizationList(Page):
    """A page of organizations, oldest first."""

    organizations = OrganizationSerializer(many=True)


class OrganizationOne(serializers.Serializer):
    organization = OrganizationSerializer()


class ClientList(Page):
    """A page of the organization's clients, oldest first."""

    clients = ClientSerializer(many=True)


class AuditEventList(Page):
    """A page of the organization's audit events, newest first."""

    audit_events = AuditEventSerializer(many=True)


class ClientOne(serializers.Serializer):
    client = ClientSerializer()


class ClientCreated(ClientOne, PlainSecret):
    """The new client, and its first secret in plain text."""


class SecretList(serializers.Serializer):
    secrets = SecretSerializer(many=True)


class SecretOne(serializers.Serializer):
    secret = SecretSerializer()


class SecretCreated(SecretOne, PlainSecret):
    """The new secret, and the secret itself in plain text."""


class LeakResultSerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=["true_positive", "false_positive"])
    secret_id = serializers.CharField(allow_null=True)


class ReportLeakResults(serializers.Serializer):
    """One result per reported secret, in the request's order."""

    results = LeakResultSerializer(many=True)


class KeyList(serializers.Serializer):
    keys = KeySerializer(many=True)


class KeyOne(serializers.Serializer):
    key = KeySerializer()


class TrustPolicyList(serializers.Serializer):
    trust_policies = TrustPolicySerializer(many=True)


class UsageEntry(serializers.Serializer):
    start_time = Rfc3339Field()
    tokens_issued = serializers.IntegerField()
    requests_refused = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="by reason: invalid_client, invalid_scope, invalid_target, rate_limited, "
        "quota_exceeded, invalid_grant, invalid_dpop_proof…",
    )


class Usage(serializers.Serializer):
    """Tokens issued and requests refused per hour or day, oldest first, empty ones included.
    Counts reach the table within a minute (each server process writes them once a minute)."""

    usage = UsageEntry(many=True)


class TrustPolicyOne(serializers.Serializer):
    trust_policy = TrustPolicySerializer()


class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="whe_…")
    organization_id = serializers.CharField(
        allow_null=True, help_text="null: the provider's own endpoint, which gets every event"
    )
    url = serializers.CharField()
    event_types = serializers.ListField(
        child=serializers.CharField(), help_text="empty: every event type"
    )
    description = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(
        allow_blank=True, help_text="why we disabled it (410 Gone, 5 days of failures)"
    )
    create_time = Rfc3339Field()
    update_time = Rfc3339Field()


class WebhookEndpointOne(serializers.Serializer):
    webhook_endpoint = WebhookEndpointSerializer()


class SigningSecret(serializers.Serializer):
    signing_secret = serializers.CharField(
        help_text="whsec_…: shown in this response only; verify deliveries with it"
    )


class WebhookEndpointCreated(WebhookEndpointOne, SigningSecret):
    """The new endpoint, and its signing secret (the one response that holds it)."""


class WebhookEndpointList(Page):
    """A page of webhook endpoints, oldest first."""

    webhook_endpoints = WebhookEndpointSerializer(many=True)


class WebhookTestSent(serializers.Serializer):
    event_id = serializers.CharField(help_text="the webhook-id the test delivery carries")


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.CharField()
    event_id = serializers.CharField(help_text="the webhook-id: the same on every attempt")
    event_type = serializers.CharField(source="event.type")
    attempt = serializers.IntegerField(help_text="1 for the first attempt")
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    response_code = serializers.IntegerField(
        allow_null=True, help_text="null: no answer (refused, timed out, unreachable)"
    )
    duration_ms = serializers.IntegerField()
    create_time = Rfc3339Field()


class WebhookDeliveryList(Page):
    """A page of an endpoint's delivery attempts, newest first."""

    deliveries = WebhookDeliverySerializer(many=True)
