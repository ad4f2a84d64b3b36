"""One way to send the kit's own HTTP requests: through the caller's client, or urllib.

Token requests, discovery and management calls go through the ``requests.Session`` or
``httpx.Client`` the caller hands us (token requests from async code through an
``httpx.AsyncClient``, with ``asend``), so the proxies, CA bundle, client certificate (mTLS) and
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

__all__ = ["HTTPFailure", "HTTPResponse", "asend", "check_session", "is_async", "send"]

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
        if isinstance(session, httpx.AsyncClient):
            return "httpx-async"
    raise TypeError(
        "session must be a requests.Session, an httpx.Client or (for ClientCredentials) an"
        f" httpx.AsyncClient, not {type(session).__name__}"
    )


def is_async(session: object | None) -> bool:
    """Whether ``session`` is an ``httpx.AsyncClient`` (sent with ``asend``, not ``send``)."""
    return session is not None and _session_kind(session) == "httpx-async"


def check_session(session: object | None, *, allow_async: bool = False) -> None:
    """Refuse, when it is configured rather than at the first request, what we cannot use.

    An ``httpx.AsyncClient`` only where the caller has async code to send it from
    (``allow_async``): ``ClientCredentials`` as the auth of an ``httpx.AsyncClient``.
    """
    if is_async(session) and not allow_async:
        raise TypeError("an httpx.AsyncClient can send only from async code; pass an httpx.Client")


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
    kind = _session_kind(session)
    if kind == "requests":
        return _send_requests(session, method, url, headers, body, timeout)
    if kind == "httpx-async":
        raise TypeError("an httpx.AsyncClient sends only from async code")
    return _send_httpx(session, method, url, headers, body, timeout)


async def asend(
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    timeout: float,
    session: Any,
) -> HTTPResponse:
    """``send`` through an ``httpx.AsyncClient``, on the event loop: no thread, no sync client.

    Raises:
        HTTPFailure: no answer (network, TLS, timeout, a URL that is not http(s)).
    """
    import httpx

    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise HTTPFailure(f"not an http(s) URL: {url!r}")
    try:
        # auth=None: not the client's own auth (it may be our ClientCredentials; see _no_auth).
        async with session.stream(
            method,
            url,
            content=body,
            headers=headers,
            timeout=timeout,
            auth=None,
            follow_redirects=False,
        ) as response:
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) >= MAX_RESPONSE_BYTES:
                    break
            return _response(response.status_code, response.headers.items(), [bytes(received)])
    except httpx.HTTPError as exc:
        raise HTTPFailure(str(exc)) from None


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
