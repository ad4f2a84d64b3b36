"""Forms that show a secret must not run twice when the browser re-sends them.

The secret-once page is the answer to a POST, so a reload (or back, then forward) would
re-submit the form and create a second client or secret. Each such form carries a random
nonce; the session remembers which nonces were used and where their result lives now, and a
re-sent form is redirected there (a GET that shows suffixes only). The session holds nonces
and URLs, never a secret.
"""

from __future__ import annotations

import secrets

from django.http import HttpRequest

SESSION_KEY = "portal_form_nonces"
KEEP = 50


def nonce_issue(request: HttpRequest) -> str:
    nonce = secrets.token_urlsafe(16)
    nonces = dict(request.session.get(SESSION_KEY, {}))
    nonces[nonce] = ""
    request.session[SESSION_KEY] = dict(list(nonces.items())[-KEEP:])
    return nonce


def nonce_used(request: HttpRequest, nonce: str) -> str | None:
    """Where a form with this nonce already led, or None when it was not used yet."""
    return request.session.get(SESSION_KEY, {}).get(nonce) or None


def nonce_spend(request: HttpRequest, nonce: str, result_url: str) -> None:
    if not nonce:
        return
    nonces = dict(request.session.get(SESSION_KEY, {}))
    nonces[nonce] = result_url
    request.session[SESSION_KEY] = dict(list(nonces.items())[-KEEP:])
