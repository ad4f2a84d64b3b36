"""The one way an e-mail leaves the server: rendered from templates, sent by Django's mail API.

A mail is a template prefix under ``templates/`` (``portal/email/password_reset``): its
``_subject.txt``, its ``.txt`` body and, when present, its ``.html`` alternative. Nobody calls
``send`` inside a request: requests enqueue an outbox task (kind ``email``, or a kind of their
own whose handler builds the mail in the worker), so a slow or failing mail server neither
delays an answer nor, by its timing, tells whether an account exists.

Links in mails start with ``settings.PORTAL_URL`` (``link``), never with a request's ``Host``
header, which the sender of a request chooses. Mails carry no secret: a link holds a signed,
expiring token that works once, never a password or a client secret.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string


def link(path: str) -> str:
    """The absolute URL of ``path`` (``/password-reset/…``) on the portal's configured address."""
    return settings.PORTAL_URL.rstrip("/") + "/" + path.lstrip("/")


def render(template: str, context: dict[str, Any]) -> dict[str, str]:
    """``subject``, ``text`` and (when the template has one) ``html`` of a mail."""
    subject = render_to_string(f"{template}_subject.txt", context)
    message = {
        # One line of printable characters: a header cannot hold a line break (Django would
        # refuse the mail) and should hold no other control character, whatever the data.
        "subject": " ".join("".join(c if c.isprintable() else " " for c in subject).split()),
        "text": render_to_string(f"{template}.txt", context),
    }
    with contextlib.suppress(TemplateDoesNotExist):  # the HTML part is optional
        message["html"] = render_to_string(f"{template}.html", context)
    return message


def deliver(to: list[str], message: dict[str, str]) -> None:
    """Send a rendered ``message`` to ``to`` through ``settings.EMAIL_BACKEND`` (raises on
    failure, so the outbox retries)."""
    mail = EmailMultiAlternatives(
        subject=message["subject"], body=message["text"], from_email=None, to=to
    )
    if message.get("html"):
        mail.attach_alternative(message["html"], "text/html")
    mail.send(fail_silently=False)


def send(to: list[str], template: str, context: dict[str, Any]) -> None:
    """Render ``template`` with ``context`` and send it (in the worker, never in a request)."""
    deliver(to, render(template, context))
