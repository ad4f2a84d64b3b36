"""Small helpers that several services share."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from clients.models import (
    ApiClient,
    ClientSecret,
    FormClaim,
    hash_secret,
    make_plain_secret,
    secret_lookup,
)


class AlreadySubmitted(Exception):
    """This one-time form was submitted before; ``target_id`` names what the first submission
    made (a client's id), or is empty when there is nothing to show."""

    def __init__(self, target_id: str = "") -> None:
        super().__init__("this form was already submitted")
        self.target_id = target_id


def form_claim(token: str, *, kind: str, organization_id: str, target_id: str = "") -> None:
    """Claim a one-time form token, or raise ``AlreadySubmitted``.

    Called first inside the service's transaction: the claim is a unique row, so of any number of
    concurrent submissions exactly one inserts it (the others wait for its commit on PostgreSQL,
    for its transaction on SQLite, then fail the insert); a change that fails rolls the claim
    back with it, so the form may be corrected and sent again. No token, no claim (the API).
    """
    if not token:
        return
    token = token[:64]
    try:
        with transaction.atomic():
            FormClaim.objects.create(
                token=token, kind=kind, organization_id=organization_id, target_id=target_id
            )
            return
    except IntegrityError:
        pass
    first = FormClaim.objects.filter(token=token, organization_id=organization_id).first()
    raise AlreadySubmitted(first.target_id if first is not None else "")


def check_model(instance: Model, exclude: list[str] | None = None) -> None:
    """Run the model's own checks; each service checks uniqueness itself, with its own message."""
    instance.full_clean(exclude=exclude, validate_unique=False)


def delete_once(instance: Model) -> bool:
    """Delete ``instance``; False when it was gone already.

    Deleting by query (not ``instance.delete()``) makes a second or concurrent delete a clean
    no-op that writes no audit event, and leaves the instance's id for the event.
    """
    deleted, _ = type(instance)._default_manager.filter(pk=instance.pk).delete()
    return deleted > 0


def lifetime_capped(client: ApiClient, expire_time: datetime | None) -> datetime | None:
    """``expire_time`` within the organization's maximum secret lifetime: none asked for gets
    the maximum; a later one is refused (a ValidationError naming the limit)."""
    organization = client.organization
    days = organization.effective_secret_lifetime_days if organization is not None else None
    if days is None:
        return expire_time
    latest = timezone.now() + timedelta(days=days)
    if expire_time is None:
        return latest
    if expire_time > latest + timedelta(minutes=1):
        raise ValidationError(
            {"expire_time": [f"secrets of this organization live at most {days} days"]},
            code="lifetime",
        )
    return expire_time


def new_secret(client: ApiClient, expire_time: datetime | None = None) -> tuple[ClientSecret, str]:
    """A new secret for ``client``: only its argon2id hash and keyed lookup are stored, the
    plain value is returned once. Its lifetime is capped by the organization's maximum."""
    expire_time = lifetime_capped(client, expire_time)
    plain = make_plain_secret()
    secret = ClientSecret.objects.create(
        client=client,
        secret_hash=hash_secret(plain),
        secret_suffix=plain[-4:],
        lookup_hmac=secret_lookup(plain),
        expire_time=expire_time,
    )
    return secret, plain
