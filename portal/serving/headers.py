"""The security headers every answer carries, in one list.

``SecurityHeadersMiddleware`` puts them on Django's answers and the token fast path
(``portal.serving.fastpath``) on its own, so both paths answer with the same headers. The values
come from Django's usual settings (``SECURE_CONTENT_TYPE_NOSNIFF``, ``SECURE_REFERRER_POLICY``,
``SECURE_CROSS_ORIGIN_OPENER_POLICY``, ``X_FRAME_OPTIONS``, ``SECURE_HSTS_*``) and our
``CONTENT_SECURITY_POLICY`` (Django 5.2 has no policy of its own).
"""

from __future__ import annotations

from django.conf import settings

Header = tuple[str, str]


def security_headers(*, secure: bool) -> list[Header]:
    """The headers for an answer; ``secure``: the request came over HTTPS (HSTS is sent then
    only, RFC 6797 §7.2)."""
    headers: list[Header] = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        headers.append(("Referrer-Policy", policy if isinstance(policy, str) else ",".join(policy)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS.upper()))
    content_policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
    if content_policy:
        headers.append(("Content-Security-Policy", content_policy))
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append(("Strict-Transport-Security", hsts))
    return headers
