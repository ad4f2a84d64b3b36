"""Small helpers that several services share."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Model

from clients.models import ApiClient, ClientSecret, hash_secret, make_plain_secret


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


def new_secret(client: ApiClient, expire_time: datetime | None = None) -> tuple[ClientSecret, str]:
    """A new secret for ``client``: only its hash is stored, the plain value is returned once."""
    plain = make_plain_secret()
    secret = ClientSecret.objects.create(
        client=client,
        secret_hash=hash_secret(plain),
        secret_suffix=plain[-4:],
        expire_time=expire_time,
    )
    return secret, plain
