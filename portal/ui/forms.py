"""Portal forms: single-field checks and shaping; every rule that spans models is a service's."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.http import QueryDict
from django.utils import timezone

from clients import activity, services, webhooks
from clients.models import (
    MAX_CUSTOM_CLAIMS,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    ApiClient,
    Membership,
    Organization,
    validate_client_lists,
    validate_no_control_characters,
)
from oauth.settings import oauth_settings


class PasswordPairForm(forms.Form):
    """A new password, typed twice, checked by the configured validators."""

    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def email_for_validation(self) -> str:
        return ""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", "the two passwords differ")
        elif first:
            email = self.email_for_validation()
            user = get_user_model()(username=email, email=email)
            try:
                validate_password(first, user)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


def email_field() -> forms.EmailField:
    """An e-mail address field as every portal form labels it (accounts are e-mail addresses)."""
    return forms.EmailField(
        label="E-mail", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )


class LoginForm(AuthenticationForm):
    """Django's log-in form, saying what the account name is: an e-mail address."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "E-mail"
        self.fields["username"].widget.input_type = "email"
        self.fields["username"].widget.attrs["autocomplete"] = "username"


class EmailPasswordResetForm(PasswordResetForm):
    email = email_field()


class SignupForm(PasswordPairForm):
    email = email_field()
    organization_name = forms.CharField(
        label="Organization name",
        max_length=MAX_NAME_LENGTH,
        validators=[validate_no_control_characters],
        help_text="Your company or team; you can invite colleagues later.",
    )
    field_order = ["email", "organization_name", "password1", "password2"]

    def email_for_validation(self) -> str:
        return self.cleaned_data.get("email", "")


class InvitationSignupForm(PasswordPairForm):
    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def email_for_validation(self) -> str:
        return self.email


class InviteForm(forms.Form):
    email = email_field()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class DeleteClientForm(forms.Form):
    name = forms.CharField(label="Type the client's name to confirm", strip=False)

    def __init__(self, *args: Any, client: ApiClient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if name != self.client.name:
            raise ValidationError("the name does not match; nothing was deleted")
        return name


def claims_from(data: QueryDict | None) -> list[dict[str, str]]:
    """Custom-claim rows from repeated ``claim_key``/``claim_value`` fields; blank rows dropped."""
    if data is None:
        return []
    keys, values = data.getlist("claim_key"), data.getlist("claim_value")
    rows = []
    for index in range(max(len(keys), len(values))):
        key = keys[index].strip() if index < len(keys) else ""
        value = values[index].strip() if index < len(values) else ""
        if key or value:
            rows.append({"key": key, "value": value})
    return rows


class ClientForm(forms.Form):
    """Register or edit a client. APIs and scopes are offered from the organization's catalog.

    Every mistake is found in one pass: the fields' own checks, the domain's checks of the
    lists and claims (``validate_client_lists``) and the catalog's (``catalog_check``) all run in
    ``clean``, and each error sits beside its field or its claim row. A ticked scope ticks its
    API: nobody means a scope without the API that offers it.
    """

    # The model's validators, so that every mistake shows in one pass, before any service runs.
    name = forms.CharField(max_length=MAX_NAME_LENGTH, validators=[validate_no_control_characters])
    description = forms.CharField(
        max_length=MAX_DESCRIPTION_LENGTH,
        required=False,
        validators=[validate_no_control_characters],
        help_text="One line: what the client does, for your team.",
    )
    audience = forms.MultipleChoiceField(
        label="APIs", required=False, widget=forms.CheckboxSelectMultiple
    )
    scopes = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    expiry = forms.IntegerField(label="Token lifetime (seconds)")
    dpop_bound_access_tokens = forms.BooleanField(
        label="Require DPoP",
        required=False,
        help_text="Refuse token requests without a DPoP proof: every token is bound to a key "
        "that never leaves the caller (RFC 9449).",
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.catalog = catalog = services.catalog_for(organization)
        self.claim_errors: dict[int, list[str]] = {}
        self.fields["audience"].choices = [(api.audience, api.name) for api in catalog]
        self.fields["scopes"].choices = sorted(
            {(scope.name, scope.name) for api in catalog for scope in api.scopes.all()}
        )
        expiry = self.fields["expiry"]
        expiry.min_value, expiry.max_value = (
            oauth_settings.TOKEN_EXPIRY_MIN,
            oauth_settings.TOKEN_EXPIRY_MAX,
        )
        expiry.validators = []
        expiry.widget.attrs.update(
            {"min": expiry.min_value, "max": expiry.max_value, "step": 1, "inputmode": "numeric"}
        )
        expiry.initial = oauth_settings.TOKEN_EXPIRY_DEFAULT
        expiry.help_text = (
            f"Between {expiry.min_value} (1 minute) and {expiry.max_value} (24 hours); "
            f"default {oauth_settings.TOKEN_EXPIRY_DEFAULT} (1 hour)."
        )
        if self.is_bound:
            self.claims = claims_from(self.data)
        else:
            self.claims = list(self.initial.get("custom_claims", []))

    def clean_expiry(self) -> int:
        expiry = self.cleaned_data["expiry"]
        field = self.fields["expiry"]
        if not field.min_value <= expiry <= field.max_value:
            raise ValidationError(
                f"choose a lifetime between {field.min_value} and {field.max_value} seconds"
            )
        return expiry

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if len(self.claims) > MAX_CUSTOM_CLAIMS:
            self.add_error(None, f"at most {MAX_CUSTOM_CLAIMS} custom claims")
        data["custom_claims"] = self.claims
        scopes = list(data.get("scopes", []))
        audience = self._with_scope_apis(list(data.get("audience", [])), scopes)
        if "audience" in data:
            data["audience"] = audience
        problems = validate_client_lists(scopes, audience, self.claims)
        try:
            services.catalog_check(organization=self.organization, audience=audience, scopes=scopes)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                problems.setdefault(field, []).extend(messages)
        add_service_errors(self, ValidationError(problems))
        return data

    def is_valid(self) -> bool:
        """Valid when no field and no claim row has an error."""
        return super().is_valid() and not self.claim_errors

    def _with_scope_apis(self, audience: list[str], scopes: list[str]) -> list[str]:
        """``audience`` and, for each scope that no ticked API offers, the first API offering it."""
        offers = {api.audience: {s.name for s in api.scopes.all()} for api in self.catalog}
        for scope in scopes:
            if not any(scope in offers.get(aud, ()) for aud in audience):
                audience += [aud for aud, names in offers.items() if scope in names][:1]
        return audience

    def claim_rows(self) -> list[dict[str, Any]]:
        """The rows to show, each with its errors: the entered ones and one empty row to type
        into (works without JS)."""
        rows = [
            {**claim, "errors": self.claim_errors.get(i, [])} for i, claim in enumerate(self.claims)
        ]
        return [*rows, {"key": "", "value": "", "errors": []}]

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data.get("description", ""),
            "audience": list(data.get("audience", [])),
            "scopes": list(data.get("scopes", [])),
            "custom_claims": data["custom_claims"],
            "expiry": data["expiry"],
            "dpop_bound_access_tokens": data.get("dpop_bound_access_tokens", False),
        }


CLAIM_KEY_RE = re.compile(r"custom_claims\[(\d+)\](?:\.(\w+))?")


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: on its field when there is one."""
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for key, errors in error.message_dict.items():
        base = key.partition("[")[0]
        if key in form.fields:
            for message in errors:
                form.add_error(key, message)
        elif base in form.fields:
            # ``scopes[1]``: the form's field is the whole list; the message names the value.
            for message in errors:
                form.add_error(base, message)
        elif match := CLAIM_KEY_RE.fullmatch(key):
            # ``custom_claims[1].key`` names no form field: beside its row when the form shows
            # rows (``claim_errors``), else in the summary naming the row, counting from 1.
            row, part = int(match.group(1)), match.group(2) or "claim"
            for message in errors:
                if hasattr(form, "claim_errors"):
                    # Beside the row, and in the summary (``_form_errors.html``) by its number.
                    form.claim_errors.setdefault(row, []).append(f"{part}: {message}")
                else:
                    form.add_error(None, f"custom claim {row + 1} ({part}): {message}")
        else:
            for message in errors:
                form.add_error(None, message)


class AuditFilterForm(forms.Form):
    """The activity page's filters: a client, a person, a kind of event, a range of days."""

    client = forms.CharField(required=False, max_length=32)
    person = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *activity.KINDS.items()])
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args: Any, members: list[Membership], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].choices = [("", "Everyone")] + [
            (str(m.user_id), m.user.get_username()) for m in members
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "the last day comes on or after the first")
        return data

    def filters(self) -> dict[str, Any]:
        """The selector's keyword arguments for the valid fields (a wrong one filters nothing)."""
        data = self.cleaned_data if self.is_bound else {}
        until = data.get("until")
        return {
            "client_id": data.get("client", ""),
            "actor_id": data.get("person", ""),
            "kind": data.get("kind", ""),
            "since": _day_start(data.get("since")),
            "until": _day_start(until + timedelta(days=1)) if until else None,
        }


def _day_start(day: date | None) -> datetime | None:
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


class TrustPolicyForm(forms.Form):
    """A trust policy as a person types it: claim conditions one ``claim = value`` per line, a
    static JWKS as JSON. What a policy may say is the model's to check (clients.trust)."""

    name = forms.CharField(max_length=MAX_NAME_LENGTH)
    issuer = forms.CharField(
        max_length=256, help_text="The iss of the workload's tokens, e.g. GitHub's URL."
    )
    audience = forms.CharField(
        max_length=256, help_text="The aud the workload asks its token for (default: this server)."
    )
    subject = forms.CharField(
        max_length=512,
        required=False,
        help_text="Exact, or with * wildcards (a * never spans a colon).",
    )
    claim_conditions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One per line: claim = value (exact or with * wildcards).",
    )
    max_token_age = forms.IntegerField(
        min_value=1, max_value=86400, initial=300, help_text="Seconds since the token's iat."
    )
    jwks = forms.CharField(
        required=False,
        label="Static JWKS (optional)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="Only for an issuer that publishes no discovery document (a private cluster).",
    )

    def clean_claim_conditions(self) -> list[dict[str, str]]:
        conditions = []
        for number, line in enumerate(self.cleaned_data["claim_conditions"].splitlines(), 1):
            if not line.strip():
                continue
            claim, equals, value = line.partition("=")
            if not equals or not claim.strip() or not value.strip():
                raise ValidationError(f"line {number}: write claim = value")
            conditions.append({"claim": claim.strip(), "value": value.strip()})
        return conditions

    def clean_jwks(self) -> Any:
        text = self.cleaned_data["jwks"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValidationError("the JWKS is not valid JSON") from exc

    @staticmethod
    def conditions_text(conditions: list[dict[str, str]]) -> str:
        return "\n".join(f"{c['claim']} = {c['value']}" for c in conditions)


class TokenTestForm(forms.Form):
    token = forms.CharField(
        label="External token",
        max_length=16 * 1024,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
    )


class OrganizationSettingsForm(forms.Form):
    """What an owner sets for the whole organization: what a leak report does, and how long
    new secrets may live (within the provider's cap)."""

    on_leak = forms.ChoiceField(
        label="When a secret is found in public",
        choices=Organization.OnLeak.choices,
        widget=forms.RadioSelect,
        help_text="A secret scanner (GitHub, or the provider's tools) reports secrets it finds "
        "in public code, logs or pastes. Revoking at once is safest; choose notify only if "
        "your services must keep running until you rotate.",
    )
    secret_max_lifetime_days = forms.IntegerField(
        label="Maximum secret lifetime (days)",
        required=False,
        min_value=1,
        help_text="New secrets expire after at most this many days; the owners and admins are "
        "reminded 14 and 3 days before. Empty: no limit of your own.",
    )

    def __init__(self, *args: Any, cap: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["secret_max_lifetime_days"]
        if cap is not None:
            field.max_value = cap
            field.validators.append(MaxValueValidator(cap))
            field.widget.attrs["max"] = cap
            field.help_text += f" The provider allows at most {cap} days."


class WebhookForm(forms.Form):
    """A webhook endpoint: where, which events (none ticked: all), a note, on or off."""

    url = forms.CharField(
        label="Endpoint URL",
        max_length=2000,
        help_text="https:// on a public address; we POST each event there, signed.",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/m2m"}),
    )
    event_types = forms.MultipleChoiceField(
        label="Events",
        required=False,
        choices=[(t, t) for t in webhooks.PUBLIC_TYPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event, including those of later features.",
    )
    description = forms.CharField(
        label="Description", max_length=MAX_DESCRIPTION_LENGTH, required=False
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)


class QuotaForm(forms.Form):
    """A client's token quota (empty: no quota for that window)."""

    per_hour = forms.IntegerField(
        required=False, min_value=1, max_value=2_000_000_000, label="Tokens per hour"
    )
    per_day = forms.IntegerField(
        required=False, min_value=1, max_value=2_000_000_000, label="Tokens per day"
    )
    mode = forms.ChoiceField(
        choices=[("enforce", "Enforce: refuse past the quota"), ("observe", "Observe: warn only")],
        initial="enforce",
    )

    def quota(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if data.get("per_hour") is None and data.get("per_day") is None:
            return None
        return {
            "per_hour": data.get("per_hour"),
            "per_day": data.get("per_day"),
            "mode": data["mode"],
        }
