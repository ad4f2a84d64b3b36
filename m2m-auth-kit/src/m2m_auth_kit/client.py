"""Get and reuse OAuth 2.0 client-credentials access tokens (RFC 6749 §4.4).

The caller half of the kit. It needs only the standard library; the
``requests`` and ``httpx`` plug-ins work when those libraries are installed and
are imported only when used (``requests``' base class is imported if present).

    from m2m_auth_kit.client import ClientCredentials

    credentials = ClientCredentials(
        "https://auth.example.com/oauth/token", client_id, client_secret, scope="orders:read"
    )
    session = requests.Session()
    session.auth = credentials.requests_auth()
    session.get("https://api.example.com/orders")   # Authorization: Bearer ... added

    with httpx.Client(auth=credentials.httpx_auth()) as client:
        client.get("https://api.example.com/orders")

One ``ClientCredentials`` per (client, scope, audience) and process is the
intended use: it is thread-safe, keeps one token until shortly before it
expires, and lets a single thread fetch a new one while the others wait.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

try:  # ClientCredentialsAuth subclasses requests' AuthBase when requests is installed.
    from requests.auth import AuthBase as _RequestsAuthBase
except ImportError:  # pragma: no cover - exercised only without requests
    _RequestsAuthBase = object  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    import httpx
    import requests

__all__ = ["ClientCredentials", "ClientCredentialsAuth", "TokenRequestError"]

_USER_AGENT = "m2m-auth-client/0.1 (+python-urllib)"
_MAX_RESPONSE_BYTES = 1024 * 1024
# RFC 6749 makes expires_in optional; without it we keep a token this long.
_DEFAULT_LIFETIME = 60.0
_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class TokenRequestError(Exception):
    """The token endpoint refused to issue a token, or could not be reached.

    Attributes:
        error: the OAuth ``error`` code (RFC 6749 §5.2), or ``"request_failed"``
            (network) / ``"invalid_response"`` (not a token response).
        error_description: the server's ``error_description``, if any.
        status_code: the HTTP status, or ``None`` when no response arrived.
    """

    def __init__(
        self, error: str, error_description: str | None = None, status_code: int | None = None
    ) -> None:
        self.error = error
        self.error_description = error_description
        self.status_code = status_code
        message = f"{error}: {error_description}" if error_description else error
        super().__init__(message)


class ClientCredentials:
    """A cached source of access tokens for one OAuth client.

    Args:
        token_url: the authorization server's token endpoint.
        client_id, client_secret: the client's credentials.
        scope: scopes to request, as a space-separated string or an iterable.
        audience: the ``audience`` parameter to send, if the server wants one.
        auth_method: ``"client_secret_basic"`` (HTTP Basic, the default) or
            ``"client_secret_post"`` (credentials in the form body).
        refresh_margin: fetch a new token this many seconds before the cached
            one expires (at most half its lifetime), so a token never expires in
            flight.
        timeout: seconds to wait for the token endpoint.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | Iterable[str] | None = None,
        audience: str | None = None,
        auth_method: str = "client_secret_basic",
        refresh_margin: float = 30,
        timeout: float = 10,
    ) -> None:
        """Configure the client; no request is made until ``token()``."""
        if auth_method not in _AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {_AUTH_METHODS}")
        if urllib.parse.urlsplit(token_url).scheme not in ("http", "https"):
            raise ValueError("token_url must be an http(s) URL")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope if scope is None or isinstance(scope, str) else " ".join(scope)
        self.audience = audience
        self.auth_method = auth_method
        self.refresh_margin = refresh_margin
        self.timeout = timeout
        # (access_token, monotonic time after which we fetch a new one)
        self._cached: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener()

    def __repr__(self) -> str:
        # Never the secret, never the token.
        return f"<ClientCredentials client_id={self.client_id!r} token_url={self.token_url!r}>"

    # -- tokens ----------------------------------------------------------------------------------

    def token(self) -> str:
        """Return a valid access token, fetching one only when the cached one is due.

        Thread-safe: when many threads need a new token at once, one of them
        asks the server and the others wait for its answer.

        Raises:
            TokenRequestError: the token endpoint refused or failed.
        """
        cached = self._cached
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() < cached[1]:
                return cached[0]  # fetched by the thread we waited for
            return self._fetch()

    def invalidate(self) -> None:
        """Forget the cached token, so the next ``token()`` fetches a new one."""
        self._cached = None

    def _token_after_rejection(self, rejected: str) -> str:
        """A token to retry with after ``rejected`` got a 401.

        Only the first of many concurrent 401s for the same token drops it;
        the others reuse the replacement instead of each fetching their own.
        """
        with self._lock:
            cached = self._cached
            if cached is not None and cached[0] != rejected and time.monotonic() < cached[1]:
                return cached[0]
            self._cached = None
            return self._fetch()

    def _fetch(self) -> str:
        fields = {"grant_type": "client_credentials"}
        if self.scope:
            fields["scope"] = self.scope
        if self.audience:
            fields["audience"] = self.audience
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": _USER_AGENT,
        }
        if self.auth_method == "client_secret_basic":
            headers["Authorization"] = _basic_auth(self.client_id, self._client_secret)
        else:
            fields["client_id"] = self.client_id
            fields["client_secret"] = self._client_secret
        # S310: the constructor allows only http(s) token URLs.
        request = urllib.request.Request(  # noqa: S310
            self.token_url, data=urllib.parse.urlencode(fields).encode("ascii"), headers=headers
        )
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, body = response.status, response.read(_MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            with exc:
                status, body = exc.code, exc.read(_MAX_RESPONSE_BYTES)
        except (OSError, ValueError) as exc:
            raise TokenRequestError("request_failed", str(exc)) from None

        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise TokenRequestError("invalid_response", f"HTTP {status}, not JSON", status)
        if status != 200 or "error" in answer:
            description = answer.get("error_description")
            raise TokenRequestError(
                str(answer.get("error") or "invalid_response"),
                description if isinstance(description, str) else None,
                status,
            )
        access_token = answer.get("access_token")
        token_type = answer.get("token_type")
        if not isinstance(access_token, str) or not access_token:
            raise TokenRequestError("invalid_response", "no access_token", status)
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise TokenRequestError("invalid_response", "token_type is not Bearer", status)

        expires_in = answer.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, int | float) and expires_in > 0
            else _DEFAULT_LIFETIME
        )
        # Counted from when we asked, not when we got the answer: errs on the early side.
        margin = min(self.refresh_margin, lifetime / 2)
        self._cached = (access_token, started + lifetime - margin)
        return access_token

    # -- plug-ins --------------------------------------------------------------------------------

    def requests_auth(self) -> ClientCredentialsAuth:
        """A ``requests.auth.AuthBase`` that adds this client's bearer token."""
        return ClientCredentialsAuth(self)

    def httpx_auth(self) -> httpx.Auth:
        """An ``httpx.Auth`` (sync and async) that adds this client's bearer token."""
        return _httpx_auth_class()(self)


def _basic_auth(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: form-urlencode id and secret before Base64 encoding.
    user = urllib.parse.quote_plus(client_id, safe="")
    password = urllib.parse.quote_plus(client_secret, safe="")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _bearer(token: str) -> str:
    return f"Bearer {token}"


class ClientCredentialsAuth(_RequestsAuthBase):
    """``requests`` authentication with a client-credentials bearer token.

    Sets ``Authorization: Bearer <token>``. When the API answers 401 (the token
    was revoked, or the keys rotated), it gets a new token and re-sends the
    request once; a second 401 is returned to the caller.

        session.auth = ClientCredentialsAuth(credentials)
    """

    def __init__(self, credentials: ClientCredentials) -> None:
        """Wrap ``credentials``; one instance may serve many sessions and threads."""
        self.credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the bearer token and arrange the one retry on 401."""
        request.headers["Authorization"] = _bearer(self.credentials.token())
        # A streamed body can be replayed only if we can rewind it.
        body = request.body
        position = None
        if body is not None and not isinstance(body, bytes | str):
            try:
                position = body.tell()  # type: ignore[union-attr]
            except (AttributeError, OSError):
                position = -1  # not rewindable: no retry
        request.register_hook("response", functools.partial(self._retry_on_401, position=position))
        return request

    def _retry_on_401(
        self, response: requests.Response, *, position: int | None, **kwargs: Any
    ) -> requests.Response:
        request = response.request
        if response.status_code != 401 or position == -1:
            return response
        rejected = str(request.headers.get("Authorization", ""))[len("Bearer ") :]
        # Drain and release the connection before re-sending (requests' own
        # HTTPDigestAuth does the same).
        _ = response.content
        response.close()
        if position is not None:
            request.body.seek(position)  # type: ignore[union-attr]

        from requests.cookies import extract_cookies_to_jar

        retry = request.copy()
        extract_cookies_to_jar(retry._cookies, request, response.raw)  # type: ignore[attr-defined]
        retry.prepare_cookies(retry._cookies)  # type: ignore[attr-defined]
        retry.headers["Authorization"] = _bearer(self.credentials._token_after_rejection(rejected))
        # connection.send() runs no hooks, so this cannot retry a second time.
        retried = response.connection.send(retry, **kwargs)
        retried.history.append(response)
        retried.request = retry
        return retried


@functools.cache
def _httpx_auth_class() -> type[httpx.Auth]:
    # Built on first use so that this module imports without httpx.
    import httpx

    class ClientCredentialsHttpxAuth(httpx.Auth):
        """``httpx`` authentication with a client-credentials bearer token.

        Same behaviour as ``ClientCredentialsAuth``: bearer header, one new
        token and one retry on 401. Works with ``httpx.Client`` and
        ``httpx.AsyncClient``; the async flow fetches tokens in a worker
        thread so the event loop never blocks on the token endpoint.
        """

        # Load a streamed request body so that the retry can send it again.
        requires_request_body = True

        def __init__(self, credentials: ClientCredentials) -> None:
            """Wrap ``credentials``; one instance may serve many clients and threads."""
            self.credentials = credentials

        def sync_auth_flow(
            self, request: httpx.Request
        ) -> Generator[httpx.Request, httpx.Response, None]:
            """Send with the bearer token; on 401, once more with a new token."""
            token = self.credentials.token()
            request.headers["Authorization"] = _bearer(token)
            response = yield request
            if response.status_code == 401:
                request.headers["Authorization"] = _bearer(
                    self.credentials._token_after_rejection(token)
                )
                yield request

        async def async_auth_flow(self, request: httpx.Request) -> Any:
            """As ``sync_auth_flow``, fetching tokens off the event loop when needed."""
            import anyio.to_thread  # an httpx dependency; works under asyncio and trio

            credentials = self.credentials
            cached = credentials._cached
            if cached is not None and time.monotonic() < cached[1]:
                token = cached[0]
            else:
                token = await anyio.to_thread.run_sync(credentials.token)
            request.headers["Authorization"] = _bearer(token)
            response = yield request
            if response.status_code == 401:
                token = await anyio.to_thread.run_sync(credentials._token_after_rejection, token)
                request.headers["Authorization"] = _bearer(token)
                yield request

    return ClientCredentialsHttpxAuth
