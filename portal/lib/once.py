"""One-time form tokens: a form that creates something carries one, and the change claims it.

A double click, a reload of the answer to a POST, or several tabs would otherwise send the same
form again and create a second client, secret or invitation. Each such form carries a random
token (field ``nonce``); the service claims it atomically, in the transaction of the change
(``clients.services._common.form_claim``: a unique row, never read-then-write), so any number
of submissions of one form make one change. This module only makes and reads the token.
"""

from __future__ import annotations

import secrets

from django.http import HttpRequest

FIELD = "nonce"


def nonce_issue() -> str:
    """A new token for a form to carry (128 random bits)."""
    return secrets.token_urlsafe(16)


def nonce_of(request: HttpRequest) -> str:
    """The token a posted form carried, or "" (then nothing is claimed)."""
    return request.POST.get(FIELD, "")[:64]
