"""The domain's outbox handlers: the mails of accounts and invitations, and plain mails.

They run in the worker (``manage.py run_worker``), never in a request: whether an address has
an account changes what is sent here, not what the request answered or how long it took. Links
with a token are made here, at sending time, so no usable link waits in the outbox table.
``ClientsConfig.ready`` imports this module, which registers the kinds.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from clients import outbox
from clients.models import ClientSecret, Invitation, invitation_token, signup_token
from portal.lib import mail


def _days(seconds: int) -> int:
    return max(1, seconds // 86400)


@outbox.handler("email")
def email(payload: dict[str, Any]) -> None:
    """A plain notification mail: ``to``, ``template`` and its JSON ``context``."""
    mail.send(list(payload["to"]), payload["template"], dict(payload.get("context", {})))


@outbox.handler("account.password_reset")
def password_reset(payload: dict[str, Any]) -> None:
    """A reset link to each active account of the address (usually one; none is no error)."""
    for user in PasswordResetForm().get_users(payload["email"]):
        path = reverse(
            "portal:password-reset-confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        context = {"email": user.email, "link": mail.link(path)}
        mail.send([user.email], "portal/email/password_reset", context)


@outbox.handler("account.signup")
def signup(payload: dict[str, Any]) -> None:
    """The confirmation link of a pending sign-up, or "you already have an account"."""
    email = payload["email"]
    user = get_user_model().objects.filter(username__iexact=email).first()
    if user is None:  # deleted meanwhile
        return
    if not user.is_active and user.last_login is None:
        token = signup_token(user, payload["organization_name"])
        context = {
            "email": user.email,
            "organization_name": payload["organization_name"],
            "link": mail.link(reverse("portal:signup-confirm", args=[token])),
            "days": _days(settings.PORTAL_SIGNUP_CONFIRM_MAX_AGE),
        }
        mail.send([user.email], "portal/email/signup_confirm", context)
        return
    context = {
        "email": user.email,
        "login_link": mail.link(reverse("portal:login")),
        "reset_link": mail.link(reverse("portal:password-reset")),
    }
    mail.send([user.email], "portal/email/signup_existing", context)


@outbox.handler("invitation.email")
def invitation(payload: dict[str, Any]) -> None:
    """An invitation's link, unless it was used or withdrawn meanwhile."""
    found = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(pk=payload["invitation_id"], accepted_time__isnull=True)
        .first()
    )
    if found is None:
        return
    context = {
        "invited_by": found.invited_by.get_username() if found.invited_by else "Someone",
        "organization_name": found.organization.display_name,
        "role": found.get_role_display(),
        "link": mail.link(reverse("portal:invitation", args=[invitation_token(found)])),
        "days": _days(settings.PORTAL_INVITATION_MAX_AGE),
    }
    mail.send([found.email], "portal/email/invitation", context)


def _secret_context(secret: ClientSecret) -> dict[str, Any]:
    client = secret.client
    return {
        "client_name": client.name,
        "client_id": client.id,
        "organization_name": client.organization.display_name if client.organization else "",
        "secret_suffix": secret.secret_suffix,
        "secret_id": secret.id,
        "link": mail.link(
            reverse("portal:client-detail", args=[client.organization_id, client.id])
        ),
    }


@outbox.handler("secret.leaked")
def secret_leaked(payload: dict[str, Any]) -> None:
    """Tell the owners and admins that a secret was found in public: where, whether it was
    revoked, and how to rotate. Nothing when the secret was deleted meanwhile."""
    secret = (
        ClientSecret.objects.select_related("client", "client__organization")
        .filter(pk=payload["secret_id"])
        .first()
    )
    if secret is None:
        return
    context = {
        **_secret_context(secret),
        "url": secret.leak_url,
        "source": secret.leak_source,
        "revoked": bool(payload.get("revoked")),
    }
    mail.send(list(payload["to"]), "portal/email/secret_leaked", context)


@outbox.handler("secret.expiring")
def secret_expiring(payload: dict[str, Any]) -> None:
    """Remind the owners and admins that a secret expires soon (clients.services.reminders)."""
    secret = (
        ClientSecret.objects.select_related("client", "client__organization")
        .filter(pk=payload["secret_id"])
        .first()
    )
    if secret is None:
        return
    context = {
        **_secret_context(secret),
        "days_left": payload["days_left"],
        "expire_time": secret.expire_time,
    }
    mail.send(list(payload["to"]), "portal/email/secret_expiring", context)
