"""Get and reuse OAuth 2.0 client-credentials access tokens (RFC 6749 §4.4).

The caller half of the kit. It needs only PyJWT and the standard library; a
``ClientCredentials`` is itself ``requests`` auth and ``httpx`` auth (sync and
async) when those libraries are installed::

    from m2m_auth_kit.client import ClientCredentials

    credentials = ClientCredentials.from_issuer(
        "https://auth.example.com", client_id, client_secret, scope="orders:read"
    )
    session = requests.Session()
    session.auth = credentials
    session.get("https://api.example.com/orders")   # Authorization: Bearer ... added

    with httpx.Client(auth=credentials) as client:
        client.get("https://api.example.com/orders")

DPoP (RFC 9449): with ``dpop=True`` (a new ES256 key in memory) or ``dpop_key=`` (PEM or JWK
of an ES256, RS256, PS256 or EdDSA private key), each token request carries a ``DPoP`` proof, the
token is bound to that key, and every API call through the requests/httpx auth sends
``Authorization: DPoP <token>`` with a fresh proof (with ``ath``). A server nonce
(``use_dpop_nonce`` with ``DPoP-Nonce``) is picked up and the request retried once.

The client authenticates with a secret (HTTP Basic or form fields), with a
private key (``private_key_jwt``, RFC 7523: a fresh signed assertion per token
request), or with no secret at all: ``federated_token`` trades the workload's
own OIDC token (GitHub Actions, GitLab CI, a Kubernetes projected token file)
for an access token with the RFC 7523 §2.1 JWT bearer grant. Token requests go
through the ``requests.Session`` or ``httpx.Client`` passed as ``session=``
(its proxies, CA bundle and client certificate apply), through urllib
otherwise. For ``httpx.AsyncClient`` auth, pass the ``httpx.AsyncClient``
itself as ``session=``: token requests are then sent by it on the event loop.

One ``ClientCredentials`` per (client, scope, audience) and process is the
intended use: it is thread-safe, keeps one token until shortly before it
expires, and lets a single thread (or task) fetch a new one while the others
wait.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import secrets
import threading
import time
import urllib.parse
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from m2m_auth_kit import _http
from m2m_auth_kit.dpop import DPOP_ALGORITHMS, access_token_hash, jwk_thumbprint
from m2m_auth_kit.verify import _discovery_urls

if TYPE_CHECKING:
    import anyio
    import httpx
    import requests
    from requests.auth import AuthBase

    _RequestsBase = AuthBase

    class _PluginBases(AuthBase, httpx.Auth):
        """What a ClientCredentials is, for type checkers: requests and httpx auth."""

else:
    # requests' and httpx's auth base classes, for those that are installed: httpx takes only
    # an httpx.Auth instance as an auth with a retry flow; requests takes any callable, and
    # its base class only tells readers (and isinstance) what the object is for.
    try:
        from requests.auth import AuthBase as _RequestsBase
    except ImportError:  # pragma: no cover - exercised only without requests
        _RequestsBase = None
    try:
        from httpx import Auth as _HttpxBase
    except ImportError:  # pragma: no cover - exercised only without httpx
        _HttpxBase = None
    _PluginBases = type(
        "_PluginBases", tuple(b for b in (_RequestsBase, _HttpxBase) if b) or (object,), {}
    )
    _RequestsBase = _RequestsBase or object

__all__ = ["ClientCredentials", "ClientCredentialsAuth", "TokenRequestError"]

_USER_AGENT = "m2m-auth-kit/0.1"
# RFC 6749 makes expires_in optional; without it we keep a token this long.
_DEFAULT_LIFETIME = 60.0
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")
_AUTH_METHODS = (*_SECRET_METHODS, "private_key_jwt")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class TokenRequestError(Exception):
    """The token endpoint refused to issue a token, or could not be reached.

    Attributes:
        error: the OAuth ``error`` code (RFC 6749 §5.2), or ``"request_failed"``
            (network), ``"invalid_response"`` (not a token response) or
            ``"discovery_failed"`` (``from_issuer`` found no usable metadata) or
            ``"federated_token_unavailable"`` (the ``federated_token`` source failed).
        error_description: the server's ``error_description``, if any.
        status_code: the HTTP status, or ``None`` when no response arrived.
    """

    def __init__(
        self, error: str, error_description: str | None = None, status_code: int | None = None
    ) -> None:
        self.error = error
        self.error_description = error_description
        self.status_code = status_code
        # With DPoP: whether this answer brought a DPoP-Nonce not seen before (a retry may pass).
        self.nonce_learned = False
        message = f"{error}: {error_description}" if error_description else error
        super().__init__(message)


class _SigningKey:
    """A private key that signs ``private_key_jwt`` assertions, with its algorithm and kid."""

    def __init__(
        self, key: str | bytes | Mapping[str, Any], key_id: str | None, algorithm: str | None
    ) -> None:
        if isinstance(key, str) and key.lstrip().startswith("{"):
            try:
                key = json.loads(key)
            except ValueError:
                raise ValueError("private_key looks like a JWK but is not JSON") from None
        if isinstance(key, Mapping):
            try:
                jwk = jwt.PyJWK(dict(key), algorithm)
            except jwt.PyJWTError as exc:
                raise ValueError(f"private_key is not a usable JWK: {exc}") from None
            self.key: Any = jwk.key
            self.algorithm = algorithm or jwk.algorithm_name
            self.kid = key_id or key.get("kid")
        else:
            data = key.encode() if isinstance(key, str) else key
            try:
                self.key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"private_key is not an unencrypted PEM private key: {exc}"
                ) from None
            self.algorithm = algorithm or _algorithm_for(self.key)
            self.kid = key_id
        if not hasattr(self.key, "sign"):
            raise ValueError("private_key must be a private key, not a public one")

    def assertion(self, client_id: str, audience: str, lifetime: int) -> str:
        """A fresh client assertion (RFC 7523 §3): new ``jti``, ``exp`` ``lifetime`` s ahead."""
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "exp": now + lifetime,
        }
        headers = {"kid": self.kid} if self.kid else None
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)


class _DPoPKey:
    """The client's DPoP key: signs a proof per request (RFC 9449 §4.2), remembers nonces."""

    def __init__(self, key: str | bytes | Mapping[str, Any] | None, algorithm: str | None) -> None:
        if key is None:
            self.algorithm = "ES256"
            self.key: Any = ec.generate_private_key(ec.SECP256R1())
        else:
            signing = _SigningKey(key, None, algorithm)
            self.algorithm, self.key = signing.algorithm, signing.key
        if self.algorithm not in DPOP_ALGORITHMS:
            raise ValueError(f"a DPoP key's algorithm must be one of {DPOP_ALGORITHMS}")
        public = self.key.public_key()
        jwk = jwt.get_algorithm_by_name(self.algorithm).to_jwk(public, as_dict=True)
        members = ("kty", "crv", "x", "y", "n", "e")
        self.jwk: dict[str, Any] = {name: jwk[name] for name in members if name in jwk}
        # The latest DPoP-Nonce of each server (scheme and host), RFC 9449 §8 and §9.
        self.nonces: dict[str, str] = {}

    @staticmethod
    def origin(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """A fresh proof for one request: ``htu`` is ``url`` without query and fragment."""
        parts = urllib.parse.urlsplit(url)
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        nonce = self.nonces.get(self.origin(url))
        if nonce is not None:
            claims["nonce"] = nonce
        headers = {"typ": "dpop+jwt", "jwk": self.jwk}
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)

    def learn_nonce(self, url: str, headers: Mapping[str, str]) -> bool:
        """Keep the answer's ``DPoP-Nonce``, if any; True when it is a new one."""
        nonce = next((v for k, v in headers.items() if k.lower() == "dpop-nonce"), None)
        origin = self.origin(url)
        if not nonce or self.nonces.get(origin) == nonce:
            return False
        self.nonces[origin] = nonce
        return True


def _wants_nonce(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an API's 401 is RFC 9449 §8's ``DPoP error="use_dpop_nonce"``."""
    challenge = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
    return status == 401 and 'error="use_dpop_nonce"' in challenge


def _algorithm_for(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_ALGORITHMS:
        return _EC_ALGORITHMS[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise ValueError(f"no signing algorithm for a {type(key).__name__}; pass algorithm=")


class _FederatedToken:
    """Where a workload's OIDC token comes from: a callable, or a file read again when its
    modification time or size changes (Kubernetes rewrites a projected token before it
    expires)."""

    def __init__(self, source: Callable[[], str] | str | os.PathLike[str]) -> None:
        if not callable(source) and not isinstance(source, str | os.PathLike):
            raise ValueError("federated_token must be a callable or a file path")
        self._source = source
        self._seen: tuple[int, int] | None = None
        self._text = ""

    def read(self) -> str:
        source = self._source
        if callable(source):
            token = source()
        else:
            try:
                stat = os.stat(source)
                stamp = (stat.st_mtime_ns, stat.st_size)
                if stamp != self._seen:
                    with open(source, encoding="utf-8") as file:
                        self._text = file.read().strip()
                    self._seen = stamp
            except OSError as exc:
                raise TokenRequestError(
                    "federated_token_unavailable", f"cannot read {os.fspath(source)}: {exc}"
                ) from None
            token = self._text
        if not isinstance(token, str) or not token.strip():
            raise TokenRequestError("federated_token_unavailable", "the federated token is empty")
        return token.strip()


class ClientCredentials(_PluginBases):
    """A cached source of access tokens for one OAuth client; also requests and httpx auth.

    Args:
        token_url: the authorization server's token endpoint (or use ``from_issuer``).
        client_id: the client's id.
        client_secret: its secret, for ``client_secret_basic`` / ``client_secret_post``.
        private_key: or its private key, for ``private_key_jwt``: PEM (str or bytes), or a
            JWK (dict or JSON string) with its private members.
        key_id: the ``kid`` to name in assertions (default: the JWK's ``kid``, else none,
            and the server tries each key registered for the client).
        algorithm: the assertion's algorithm (default: from the key; RS256 for RSA).
        scope: scopes to request, as a space-separated string or an iterable.
        audience: the ``audience`` parameter to send, if the server wants one.
        auth_method: ``"client_secret_basic"`` (the default with a secret),
            ``"client_secret_post"``, or ``"private_key_jwt"`` (the default with a key).
        federated_token: or no secret at all: the workload's OIDC token, traded with the
            JWT bearer grant (RFC 7523 §2.1) under the client's trust policies. A callable
            that returns a fresh token, or the path of a file that holds one (Kubernetes'
            projected service-account token), read again whenever the file changes.
        assertion_lifetime: seconds an assertion is valid (short: it is used once).
        session: a ``requests.Session`` or ``httpx.Client`` to send token requests with;
            or an ``httpx.AsyncClient``, for use as async httpx auth only (``await
            atoken()``; ``token()`` then raises ``TypeError``).
        refresh_margin: fetch a new token this many seconds before the cached
            one expires (at most half its lifetime), so a token never expires in
            flight.
        timeout: seconds to wait for the token endpoint.
        dpop: bind tokens with DPoP (RFC 9449) to a new ES256 key kept in memory.
        dpop_key: or to this private key (PEM or JWK; ES256, RS256, PS256 or EdDSA).
        dpop_algorithm: the proof algorithm when the key alone does not say (PS256).
    """

    # httpx: load a streamed request body so that the retry after a 401 can send it again.
    requires_request_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        private_key: str | bytes | Mapping[str, Any] | None = None,
        key_id: str | None = None,
        algorithm: str | None = None,
        scope: str | Iterable[str] | None = None,
        audience: str | None = None,
        auth_method: str | None = None,
        federated_token: Callable[[], str] | str | os.PathLike[str] | None = None,
        assertion_lifetime: int = 60,
        session: object | None = None,
        refresh_margin: float = 30,
        timeout: float = 10,
        dpop: bool = False,
        dpop_key: str | bytes | Mapping[str, Any] | None = None,
        dpop_algorithm: str | None = None,
    ) -> None:
        """Configure the client; no request is made until ``token()``."""
        given = [client_secret, private_key, federated_token]
        if sum(source is not None for source in given) != 1:
            raise ValueError("give one of client_secret, private_key or federated_token")
        self._federated = _FederatedToken(federated_token) if federated_token is not None else None
        if self._federated is not None:
            if auth_method is not None:
                raise ValueError("federated_token authenticates by itself: no auth_method")
            auth_method = "client_secret_post"  # unused: the grant carries no client secret
        if auth_method is None:
            auth_method = "private_key_jwt" if private_key is not None else "client_secret_basic"
        if auth_method not in _AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {_AUTH_METHODS}")
        if (auth_method == "private_key_jwt") != (private_key is not None):
            raise ValueError("private_key_jwt needs private_key; the other methods client_secret")
        if urllib.parse.urlsplit(token_url).scheme not in ("http", "https"):
            raise ValueError("token_url must be an http(s) URL")
        if not 1 <= assertion_lifetime <= 300:
            raise ValueError("assertion_lifetime must be 1 to 300 seconds")
        _http.check_session(session, allow_async=True)
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self._signing_key = (
            _SigningKey(private_key, key_id, algorithm) if private_key is not None else None
        )
        self.scope = scope if scope is None or isinstance(scope, str) else " ".join(scope)
        self.audience = audience
        self.auth_method = auth_method
        self.assertion_lifetime = assertion_lifetime
        self.session = session
        self.refresh_margin = refresh_margin
        self.timeout = timeout
        # (access_token, monotonic time after which we fetch a new one)
        self._cached: tuple[str, float] | None = None
        self._lock = threading.Lock()
        # Tasks of one event loop share a fetch through an async lock of that loop. Its own
        # guard, not _lock: a thread holds _lock for a whole fetch, and the loop must not wait.
        self._async_lock: tuple[object, anyio.Lock] | None = None
        self._async_lock_guard = threading.Lock()
        self._dpop = _DPoPKey(dpop_key, dpop_algorithm) if dpop or dpop_key is not None else None

    @classmethod
    def from_issuer(
        cls,
        issuer: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        session: object | None = None,
        timeout: float = 10,
        **options: Any,
    ) -> Self:
        """Find the token endpoint in the issuer's RFC 8414 metadata, then configure.

        The metadata must name exactly ``issuer`` (RFC 8414 §3.3). Without an
        explicit ``auth_method``, a secret goes in HTTP Basic unless the server
        lists only ``client_secret_post``. ``options`` are the constructor's.

        Raises:
            TokenRequestError: ``discovery_failed``, with the reason.
            TypeError: ``session`` is an ``httpx.AsyncClient`` (discovery is sync: give
                the token endpoint to the constructor).
        """
        _http.check_session(session)
        metadata = _metadata(issuer, session, timeout)
        token_url = metadata.get("token_endpoint")
        if not isinstance(token_url, str):
            raise TokenRequestError("discovery_failed", "the metadata has no token_endpoint")
        supported = metadata.get("token_endpoint_auth_methods_supported")
        if (
            options.get("auth_method") is None
            and client_secret is not None
            and isinstance(supported, list)
            and "client_secret_basic" not in supported
            and "client_secret_post" in supported
        ):
            options["auth_method"] = "client_secret_post"
        return cls(token_url, client_id, client_secret, session=session, timeout=timeout, **options)

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
            TypeError: the session is an ``httpx.AsyncClient``: use ``await atoken()``.
        """
        if _http.is_async(self.session):
            raise TypeError("the session is an httpx.AsyncClient: use await credentials.atoken()")
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

    @property
    def dpop_jkt(self) -> str | None:
        """The RFC 7638 thumbprint of the DPoP key (the tokens' ``cnf.jkt``); None without."""
        return None if self._dpop is None else jwk_thumbprint(self._dpop.jwk)

    def _fetch(self) -> str:
        """A new token; with DPoP, asked again once when the server wants its nonce (§8)."""
        try:
            return self._fetch_once()
        except TokenRequestError as exc:
            if exc.error != "use_dpop_nonce" or not exc.nonce_learned:
                raise
        return self._fetch_once()

    def _fetch_once(self) -> str:
        headers, body = self._token_request()
        started = time.monotonic()
        try:
            response = _http.send(
                "POST",
                self.token_url,
                headers=headers,
                body=body,
                timeout=self.timeout,
                session=self.session,
            )
        except _http.HTTPFailure as exc:
            raise TokenRequestError("request_failed", str(exc)) from None
        return self._accept(response, started)

    async def _afetch(self) -> str:
        """``_fetch`` through the ``httpx.AsyncClient`` session, on the event loop."""
        try:
            return await self._afetch_once()
        except TokenRequestError as exc:
            if exc.error != "use_dpop_nonce" or not exc.nonce_learned:
                raise
        return await self._afetch_once()

    async def _afetch_once(self) -> str:
        headers, body = self._token_request()
        started = time.monotonic()
        try:
            response = await _http.asend(
                "POST",
                self.token_url,
                headers=headers,
                body=body,
                timeout=self.timeout,
                session=self.session,
            )
        except _http.HTTPFailure as exc:
            raise TokenRequestError("request_failed", str(exc)) from None
        return self._accept(response, started)

    def _token_request(self) -> tuple[dict[str, str], bytes]:
        """The headers and form of one token request (a fresh assertion and DPoP proof each)."""
        fields = {"grant_type": "client_credentials"}
        if self._federated is not None:
            fields = {
                "grant_type": JWT_BEARER_GRANT,
                "client_id": self.client_id,
                "assertion": self._federated.read(),
            }
        if self.scope:
            fields["scope"] = self.scope
        if self.audience:
            fields["audience"] = self.audience
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": _USER_AGENT,
        }
        if self._federated is not None:
            pass  # the external token is the grant; the client_id picks the trust policies
        elif self._signing_key is not None:
            # RFC 7523 §3: the token endpoint is an audience every server accepts.
            fields["client_id"] = self.client_id
            fields["client_assertion_type"] = ASSERTION_TYPE
            fields["client_assertion"] = self._signing_key.assertion(
                self.client_id, self.token_url, self.assertion_lifetime
            )
        elif self.auth_method == "client_secret_basic":
            headers["Authorization"] = _basic_auth(self.client_id, str(self._client_secret))
        else:
            fields["client_id"] = self.client_id
            fields["client_secret"] = str(self._client_secret)
        if self._dpop is not None:
            headers["DPoP"] = self._dpop.proof("POST", self.token_url)
        return headers, urllib.parse.urlencode(fields).encode("ascii")

    def _accept(self, response: _http.HTTPResponse, started: float) -> str:
        """The access token of a token response, cached; ``started`` is when we asked."""
        status = response.status
        learned = self._dpop is not None and self._dpop.learn_nonce(
            self.token_url, response.headers
        )
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise TokenRequestError("invalid_response", f"HTTP {status}, not JSON", status)
        if status != 200 or "error" in answer:
            description = answer.get("error_description")
            error = TokenRequestError(
                str(answer.get("error") or "invalid_response"),
                description if isinstance(description, str) else None,
                status,
            )
            error.nonce_learned = learned
            raise error
        access_token = answer.get("access_token")
        token_type = answer.get("token_type")
        if not isinstance(access_token, str) or not access_token:
            raise TokenRequestError("invalid_response", "no access_token", status)
        expected = "Bearer" if self._dpop is None else "DPoP"
        if not isinstance(token_type, str) or token_type.lower() != expected.lower():
            # A DPoP client given a bearer token: the server ignored the proof (RFC 9449 §5).
            raise TokenRequestError("invalid_response", f"token_type is not {expected}", status)

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

    # -- requests --------------------------------------------------------------------------------

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """requests auth: add the bearer token and arrange the one retry on 401.

        ``session.auth = credentials``. When the API answers 401 (the token was
        revoked, or the keys rotated), a new token is fetched and the request
        re-sent once; a second 401 is returned to the caller.
        """
        self._sign(request.headers, str(request.method), str(request.url), self.token())
        # A streamed body can be replayed only if we can rewind it.
        body: Any = request.body
        position = None
        if body is not None and not isinstance(body, bytes | str):
            try:
                position = body.tell()
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
        rejected = str(request.headers.get("Authorization", "")).partition(" ")[2]
        # Drain and release the connection before re-sending (requests' own
        # HTTPDigestAuth does the same).
        _ = response.content
        response.close()
        if position is not None:
            request.body.seek(position)  # type: ignore[union-attr]

        from requests.cookies import extract_cookies_to_jar

        retry = request.copy()
        jar: Any = retry._cookies
        extract_cookies_to_jar(jar, request, response.raw)
        retry.prepare_cookies(jar)
        url = str(request.url)
        token = self._retry_token(rejected, url, response.status_code, response.headers)
        self._sign(retry.headers, str(request.method), url, token)
        # connection.send() runs no hooks, so this cannot retry a second time.
        connection: Any = response.connection
        retried: requests.Response = connection.send(retry, **kwargs)
        retried.history.append(response)
        retried.request = retry
        return retried

    def _sign(self, headers: Any, method: str, url: str, token: str) -> None:
        """Put the token in ``headers``: as Bearer, or as DPoP with a fresh proof (``ath``)."""
        if self._dpop is None:
            headers["Authorization"] = _bearer(token)
        else:
            headers["Authorization"] = f"DPoP {token}"
            headers["DPoP"] = self._dpop.proof(method, url, token)

    def _nonce_retry(self, url: str, status: int, headers: Mapping[str, str]) -> bool:
        """Whether a 401 asks for the API's DPoP nonce (then the same token is sent again)."""
        if self._dpop is None:
            return False
        return self._dpop.learn_nonce(url, headers) and _wants_nonce(status, headers)

    def _retry_token(self, rejected: str, url: str, status: int, headers: Any) -> str:
        """The token to retry a 401 with: the same one when only the nonce was missing."""
        if self._nonce_retry(url, status, headers):
            return rejected
        return self._token_after_rejection(rejected)

    def requests_auth(self) -> ClientCredentialsAuth:
        """A separate ``requests`` auth object (``session.auth = credentials`` does the same)."""
        return ClientCredentialsAuth(self)

    # -- httpx -----------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """httpx auth: send with the bearer token; on 401, once more with a new token."""
        request.read()  # the retry sends the body again
        token = self.token()
        url = str(request.url)
        self._sign(request.headers, request.method, url, token)
        response = yield request
        if response.status_code == 401:
            token = self._retry_token(token, url, 401, response.headers)
            self._sign(request.headers, request.method, url, token)
            yield request

    async def atoken(self) -> str:
        """``token()`` for async code: a valid access token, without blocking the event loop.

        With an ``httpx.AsyncClient`` as ``session`` the token request is sent by it, on the
        loop; otherwise ``token()`` runs in a worker thread. Either way the tasks of a loop
        that need a new token at once wait for one request.

        Raises:
            TokenRequestError: the token endpoint refused or failed.
        """
        cached = self._cached
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        async with self._loop_lock():
            cached = self._cached
            if cached is not None and time.monotonic() < cached[1]:
                return cached[0]  # fetched by the task we waited for
            if not _http.is_async(self.session):
                return await _in_thread(self.token)
            return await self._afetch()

    async def _atoken_after_rejection(self, rejected: str) -> str:
        """``_token_after_rejection`` for async code."""
        async with self._loop_lock():
            if not _http.is_async(self.session):
                return await _in_thread(self._token_after_rejection, rejected)
            cached = self._cached
            if cached is not None and cached[0] != rejected and time.monotonic() < cached[1]:
                return cached[0]
            self._cached = None
            return await self._afetch()

    def _loop_lock(self) -> anyio.Lock:
        """The async lock of the running event loop (an async lock serves one loop only)."""
        import anyio

        loop = _running_loop()
        with self._async_lock_guard:
            if self._async_lock is None or self._async_lock[0] is not loop:
                self._async_lock = (loop, anyio.Lock())
            return self._async_lock[1]

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """As ``sync_auth_flow``, never blocking the event loop (see ``atoken``)."""
        await request.aread()
        token = await self.atoken()
        url = str(request.url)
        self._sign(request.headers, request.method, url, token)
        response = yield request
        if response.status_code == 401:
            if not self._nonce_retry(url, 401, response.headers):
                token = await self._atoken_after_rejection(token)
            self._sign(request.headers, request.method, url, token)
            yield request

    def httpx_auth(self) -> Self:
        """The ``httpx.Auth`` to use: this object itself (kept for older code)."""
        return self


def _metadata(issuer: str, session: object | None, timeout: float) -> dict[str, Any]:
    """The issuer's RFC 8414 metadata; it must name ``issuer`` itself (§3.3)."""
    if urllib.parse.urlsplit(issuer).scheme not in ("http", "https"):
        raise ValueError("issuer must be an http(s) URL")
    problems = []
    for url in _discovery_urls(issuer):
        try:
            response = _http.send(
                "GET",
                url,
                headers={"Accept": "application/json", "User-Agent": _USER_AGENT},
                timeout=timeout,
                session=session,
            )
        except _http.HTTPFailure as exc:
            problems.append(f"{url}: {exc}")
            continue
        if response.status != 200:
            problems.append(f"{url}: HTTP {response.status}")
            continue
        try:
            document = json.loads(response.body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise TokenRequestError("discovery_failed", f"{url}: metadata is not a JSON object")
        if document.get("issuer") != issuer:
            raise TokenRequestError("discovery_failed", f"{url}: metadata names another issuer")
        return document
    raise TokenRequestError("discovery_failed", "; ".join(problems))


def _running_loop() -> object:
    """The running asyncio loop, or trio's token for the running trio run."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # httpx runs async under asyncio or trio only
        import trio  # type: ignore[import-not-found,unused-ignore]

        return trio.lowlevel.current_trio_token()


async def _in_thread(function: Callable[..., str], *args: Any) -> str:
    """``function(*args)`` in a worker thread, so the event loop never blocks on urllib."""
    import anyio.to_thread  # an httpx dependency; works under asyncio and trio

    return await anyio.to_thread.run_sync(function, *args)


def _basic_auth(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: form-urlencode id and secret before Base64 encoding.
    user = urllib.parse.quote_plus(client_id, safe="")
    password = urllib.parse.quote_plus(client_secret, safe="")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _bearer(token: str) -> str:
    return f"Bearer {token}"


class ClientCredentialsAuth(_RequestsBase):
    """``requests`` authentication with a client-credentials bearer token.

    The same as using the ``ClientCredentials`` itself (``session.auth =
    credentials``), kept for code written before that worked.
    """

    def __init__(self, credentials: ClientCredentials) -> None:
        """Wrap ``credentials``; one instance may serve many sessions and threads."""
        self.credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the bearer token and arrange the one retry on 401."""
        return self.credentials(request)
