"""Background work, asked for in the transaction of the change that needs it."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from clients.models import OutboxTask


def enqueue(kind: str, payload: dict[str, Any]) -> OutboxTask:
    """Write a task of ``kind`` for the worker (``clients.outbox``), in the caller's transaction.

    The row is written here, not in ``transaction.on_commit``: a change that commits always has
    its task, one that rolls back never does. ``payload`` is JSON that names what to do (ids,
    addresses), never a secret: the worker builds links and tokens itself.
    """
    return OutboxTask.objects.create(kind=kind, payload=payload)


@transaction.atomic
def email_enqueue(*, to: list[str], template: str, context: dict[str, Any]) -> OutboxTask:
    """A plain notification mail (kind ``email``): the template and its JSON context.

    Mails that carry a link with a token have a kind of their own, whose handler makes the
    token in the worker, so that no usable link waits in the table.
    """
    return enqueue("email", {"to": to, "template": template, "context": context})
