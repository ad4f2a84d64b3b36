"""Portal forms: single-field checks and shaping; every rule that spans models is a service's."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import QueryDict

from clients.models import (
    MAX_CUSTOM_CLAIMS,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    ApiClient,
    ApiResource,
    Membership,
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


class SignupForm(PasswordPairForm):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    organization_name = forms.CharField(
        label="Organization name",
        max_length=MAX_NAME_LENGTH,
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
    email = forms.EmailField()
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
    """Register or edit a client. APIs and scopes are offered from the organization's catalog."""

    name = forms.CharField(max_length=MAX_NAME_LENGTH)
    description = forms.CharField(
        max_length=MAX_DESCRIPTION_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
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

    def __init__(self, *args: Any, catalog: list[ApiResource], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalog = catalog
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
        return data

    def claim_rows(self) -> list[dict[str, str]]:
        """The rows to show: the entered ones and one empty row to type into (works without JS)."""
        return [*self.claims, {"key": "", "value": ""}]

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
            # ``custom_claims[1].key`` names no form field: say which row, counting from 1.
            row, part = int(match.group(1)) + 1, match.group(2) or "claim"
            for message in errors:
                form.add_error(None, f"custom claim {row} ({part}): {message}")
        else:
            for message in errors:
                form.add_error(None, message)
