"""One way to send the kit's own HTTP requests: through the caller's client, or urllib.

Token requests, discovery and management calls go through the ``requests.Session`` or
``httpx.Client`` the caller hands us, so the proxies, CA bundle, client certificate (mTLS) and
transport they configured on it apply to our requests too. Without one we use urllib, so the
kit needs no HTTP library of its own. Either way the answer is capped in size and a redirect is
not followed with a session (credentials are never re-sent to where a ``Location`` points).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["HTTPFailure", "HTTPResponse", "check_session", "send"]

MAX_RESPONSE_BYTES = 1024 * 1024
_OPENER = urllib.request.build_opener()


class HTTPFailure(Exception):
    """No HTTP answer arrived (connection refused, timeout, TLS failure, bad URL)."""


@dataclass(frozen=True)
class HTTPResponse:
    """An answer: status, headers with lower-case names, and at most ``MAX_RESPONSE_BYTES``."""

    status: int
    headers: dict[str, str]
    body: bytes


def _response(
    status: int, headers: Iterable[tuple[str, str]], chunks: Iterable[bytes]
) -> HTTPResponse:
    """The answer, its body read no further than ``MAX_RESPONSE_BYTES``."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) >= MAX_RESPONSE_BYTES:
            break
    return HTTPResponse(
        status, {name.lower(): value for name, value in headers}, bytes(body[:MAX_RESPONSE_BYTES])
    )


def _session_kind(session: object) -> str:
    try:
        import requests
    except ImportError:  # pragma: no cover - exercised only without requests
        pass
    else:
        if isinstance(session, requests.Session):
            return "requests"
    try:
        import httpx
    except ImportError:  # pragma: no cover - exercised only without httpx
        pass
    else:
        if isinstance(session, httpx.Client):
            return "httpx"
    raise TypeError(
        f"session must be a requests.Session or an httpx.Client, not {type(session).__name__}"
    )


def check_session(session: object | None) -> None:
    """Refuse, when it is configured rather than at the first request, what we cannot use."""
    if session is not None:
        _session_kind(session)


def _no_auth(request: Any) -> Any:
    # requests falls back to session.auth when a request's auth is None; this explicit no-op
    # keeps a session whose auth is our own ClientCredentials from authenticating its own
    # token request (which would recurse into the lock it holds).
    return request


def send(
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    timeout: float,
    session: object | None = None,
) -> HTTPResponse:
    """Send one request and return the answer, whatever its status.

    Raises:
        HTTPFailure: no answer (network, TLS, timeout, a URL that is not http(s)).
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise HTTPFailure(f"not an http(s) URL: {url!r}")
    if session is None:
        return _send_urllib(method, url, headers, body, timeout)
    if _session_kind(session) == "requests":
        return _send_requests(session, method, url, headers, body, timeout)
    return _send_httpx(session, method, url, headers, body, timeout)


def _send_urllib(
    method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
) -> HTTPResponse:
    # S310: send() allows only http(s) URLs.
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return _response(
                response.status, response.headers.items(), [response.read(MAX_RESPONSE_BYTES)]
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return _response(exc.code, exc.headers.items(), [exc.read(MAX_RESPONSE_BYTES)])
    except (OSError, ValueError) as exc:  # URLError, timeouts, resets
        raise HTTPFailure(str(exc)) from None


def _send_requests(
    session: Any,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
) -> HTTPResponse:
    import requests

    try:
        with session.request(
            method,
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            auth=_no_auth,
            allow_redirects=False,
            stream=True,
        ) as response:
            chunks = response.iter_content(64 * 1024)
            return _response(response.status_code, response.headers.items(), chunks)
    except requests.RequestException as exc:
        raise HTTPFailure(str(exc)) from None


def _send_httpx(
    session: Any,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
) -> HTTPResponse:
    import httpx

    try:
        # auth=None: not the client's own auth (it may be our ClientCredentials; see _no_auth).
        with session.stream(
            method,
            url,
            content=body,
            headers=headers,
            timeout=timeout,
            auth=None,
            follow_redirects=False,
        ) as response:
            return _response(response.status_code, response.headers.items(), response.iter_bytes())
    except httpx.HTTPError as exc:
        raise HTTPFailure(str(exc)) from None
