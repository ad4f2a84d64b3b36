"""Django guards for bearer-token APIs, built on ``m2m_auth_kit.verify`` (extra ``django``).

The refusal logic (RFC 6750 answers) lives here and ``m2m_auth_kit.drf`` reuses it, so the
two adapters answer alike; this module never imports DRF, so ``pip install
m2m-auth-kit[django]`` is enough for it.

Configuration is one setting::

    RESOURCE_SERVER = {
        "ISSUER": "https://auth.example.com",       # required: exact iss
        "AUDIENCE": "https://api.example.com",      # str, list, or None (not checked)
        "JWKS_URL": None,                           # None: discovered from the issuer
        # optional: "ALGORITHMS", "LEEWAY", "REQUIRED_TYP", "INTROSPECT",
        # "INTROSPECTION_URL", "CLIENT_ID", "CLIENT_SECRET", "JWKS_CACHE_SECONDS",
        # "MIN_REFETCH_INTERVAL", "HTTP_TIMEOUT", "JWKS_LOADER" (a callable or its dotted
        # path returning the JWKS document, instead of HTTP)
    }

Plain Django::

    @require_scopes("orders:read")
    def orders(request): ...                      # request.token_claims is the Claims

    class OrderView(ScopesRequiredMixin, View):
        required_scopes = ("orders:read",)

DRF: ``m2m_auth_kit.drf`` (``BearerTokenAuthentication``, ``HasScopes``), same setting.

DPoP (RFC 9449 §7): a DPoP-bound token comes as ``Authorization: DPoP <token>`` with a ``DPoP``
proof of its key for this request (``TokenVerifier.verify_dpop``); as ``Bearer`` it is refused.
``"DPOP_REQUIRED": True`` (or ``require_scopes(..., dpop_required=True)``, a view's
``dpop_required = True``) accepts DPoP-bound tokens only. A refused proof is 401
``DPoP error="invalid_dpop_proof"`` with ``algs``; where both schemes are accepted, each 401
carries both challenges, the one of the scheme used first (``challenges``).
``"DPOP_MAX_AGE"`` and ``"DPOP_REPLAY_CACHE"`` (a dotted path to a ``ReplayCache`` class, e.g.
one over Redis when several processes serve the API) configure the proof checks.

Answers follow RFC 6750 §3:

* no token: 401, ``WWW-Authenticate: Bearer realm="api", DPoP realm="api", algs="..."``;
* bad token: 401, ``Bearer realm="api", error="invalid_token", error_description="..."``;
* malformed request (token in the query string, broken header): 400, ``error="invalid_request"``;
* missing scope: 403, ``Bearer error="insufficient_scope", scope="a b"`` (the
  scopes the operation requires);
* issuer keys unreachable: 503 with ``Retry-After``.

Contract for a project DRF exception handler: the DRF exceptions raised by ``m2m_auth_kit.drf``
carry their headers as attributes, exactly as DRF's own do. The handler must
copy ``exc.auth_header`` into ``WWW-Authenticate`` and ``exc.wait`` into
``Retry-After`` for any ``APIException`` (DRF's default handler does; so does
any handler that starts from it), and keep the status code. Guards also put the
header on the view's ``headers`` dict, which DRF applies in
``finalize_response`` after any handler, so a handler that forgets still sends
the right header.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from m2m_auth_kit.dpop import DPOP_ALGORITHMS, InvalidDPoPProof
from m2m_auth_kit.verify import Claims, InvalidToken, JWKSUnavailable, TokenError, TokenVerifier

__all__ = [
    "ScopesRequiredMixin",
    "challenges",
    "dpop_challenge",
    "get_verifier",
    "require_scopes",
    "reset_verifier",
]

REALM = "api"

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6750 §3: characters allowed inside error_description and scope values.
_UNSAFE_IN_QUOTES = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")

_SETTING_KEYS = {
    "ISSUER": "issuer",
    "AUDIENCE": "audience",
    "JWKS_URL": "jwks_url",
    "ALGORITHMS": "algorithms",
    "LEEWAY": "leeway",
    "REQUIRED_TYP": "required_typ",
    "INTROSPECT": "introspect",
    "INTROSPECTION_URL": "introspection_url",
    "CLIENT_ID": "client_id",
    "CLIENT_SECRET": "client_secret",
    "JWKS_CACHE_SECONDS": "jwks_cache_seconds",
    "MIN_REFETCH_INTERVAL": "min_refetch_interval",
    "HTTP_TIMEOUT": "http_timeout",
    "JWKS_LOADER": "jwks_loader",
    "DPOP_REQUIRED": "dpop_required",
    "DPOP_MAX_AGE": "dpop_max_age",
    "DPOP_REPLAY_CACHE": "dpop_replay_cache",
}

_verifier: TokenVerifier | None = None
_verifier_lock = threading.Lock()


# --- The verifier --------------------------------------------------------------------------------


def get_verifier() -> TokenVerifier:
    """The process-wide ``TokenVerifier`` built from ``settings.RESOURCE_SERVER``.

    Built on first use (so importing this module fetches nothing) and shared by
    every request, so the key cache is shared too. Rebuilt when the setting
    changes (Django's ``setting_changed`` signal, sent by ``override_settings``
    and pytest-django's ``settings`` fixture).
    """
    global _verifier
    verifier = _verifier
    if verifier is None:
        with _verifier_lock:
            if _verifier is None:
                _verifier = _build_verifier(getattr(settings, "RESOURCE_SERVER", None))
            verifier = _verifier
    return verifier


def _build_verifier(config: Any) -> TokenVerifier:
    if not isinstance(config, Mapping) or not config.get("ISSUER"):
        raise ImproperlyConfigured('RESOURCE_SERVER must be a dict with at least "ISSUER"')
    unknown = set(config) - set(_SETTING_KEYS)
    if unknown:
        # A misspelt key would otherwise silently switch a check off.
        raise ImproperlyConfigured(f"RESOURCE_SERVER: unknown keys {sorted(unknown)}")
    kwargs = {_SETTING_KEYS[name]: value for name, value in config.items() if value is not None}
    issuer = kwargs.pop("issuer")
    if isinstance(kwargs.get("jwks_loader"), str):
        kwargs["jwks_loader"] = import_string(kwargs["jwks_loader"])
    if isinstance(kwargs.get("dpop_replay_cache"), str):
        # A dotted path to a ReplayCache class (e.g. one over Redis), built without arguments.
        kwargs["dpop_replay_cache"] = import_string(kwargs["dpop_replay_cache"])()
    try:
        return TokenVerifier(issuer, **kwargs)
    except ValueError as exc:
        raise ImproperlyConfigured(f"RESOURCE_SERVER: {exc}") from exc


def reset_verifier() -> None:
    """Forget the process-wide verifier and its key cache (tests; after a settings change)."""
    global _verifier
    with _verifier_lock:
        _verifier = None


@receiver(setting_changed)
def _reset_verifier(*, setting: str, **kwargs: Any) -> None:
    if setting == "RESOURCE_SERVER":
        reset_verifier()


# --- Parsing and answers (shared by both adapters) -----------------------------------------------


class _Refusal(Exception):
    """Why a request is refused, in RFC 6750 / RFC 9449 §7.1 terms; turned into a response by
    each adapter. ``scheme``: the scheme whose error it is (the one the request used);
    ``dpop_required``: whether the API accepts DPoP only (then no Bearer challenge is sent)."""

    def __init__(
        self,
        status: int,
        error: str | None,
        description: str,
        *,
        scopes: Sequence[str] = (),
        retry_after: int | None = None,
        scheme: str = "Bearer",
        dpop_required: bool = False,
    ) -> None:
        self.status = status
        self.error = error
        self.description = description
        self.scopes = tuple(scopes)
        self.retry_after = retry_after
        self.scheme = scheme
        self.dpop_required = dpop_required
        super().__init__(description)

    @property
    def challenge(self) -> str | None:
        if self.status == 503:
            return None
        if self.status == 403:
            return insufficient_scope_challenge(self.scopes, self.scheme)
        description = self.description if self.error else None
        return challenges(self.error, description, self.scheme, dpop_required=self.dpop_required)

    def body(self) -> dict[str, str]:
        data = {"error": self.error or "unauthorized", "error_description": self.description}
        if self.status == 403:
            data["scope"] = " ".join(self.scopes)
        return data


def _quoted(value: str) -> str:
    return _UNSAFE_IN_QUOTES.sub("", value)


def _challenge(scheme: str, error: str | None, description: str | None, *extra: str) -> str:
    params = [f'realm="{REALM}"']
    if error:
        params.append(f'error="{error}"')
        if description:
            params.append(f'error_description="{_quoted(description)}"')
    return f"{scheme} " + ", ".join([*params, *extra])


def bearer_challenge(error: str | None = None, description: str | None = None) -> str:
    """The ``Bearer`` challenge for a 401 or 400 (RFC 6750 §3)."""
    return _challenge("Bearer", error, description)


def dpop_challenge(error: str | None = None, description: str | None = None) -> str:
    """The ``DPoP`` challenge for a 401 or 400 (RFC 9449 §7.1), with the proof ``algs``."""
    return _challenge("DPoP", error, description, f'algs="{" ".join(DPOP_ALGORITHMS)}"')


def challenges(
    error: str | None = None,
    description: str | None = None,
    scheme: str = "Bearer",
    *,
    dpop_required: bool = False,
) -> str:
    """The whole ``WWW-Authenticate`` value: the challenge of the scheme the request used (with
    the error, if any) first, and the other accepted scheme's bare challenge beside it
    (RFC 9110 §11.6.1 allows several in one field); only ``DPoP`` when it is required."""
    if dpop_required:
        return dpop_challenge(error, description)
    if scheme == "DPoP":
        return f"{dpop_challenge(error, description)}, {bearer_challenge()}"
    return f"{bearer_challenge(error, description)}, {dpop_challenge()}"


def insufficient_scope_challenge(scopes: Sequence[str], scheme: str = "Bearer") -> str:
    """The ``WWW-Authenticate`` value for a 403 insufficient_scope (RFC 6750 §3.1), in the
    scheme the token came with."""
    if not scopes:
        return f'{scheme} error="insufficient_scope"'
    return f'{scheme} error="insufficient_scope", scope="{_quoted(" ".join(scopes))}"'


def _credentials(request: Any, dpop_required: bool) -> tuple[str, str] | None:
    """(scheme, token) of ``request``: ``Bearer`` or ``DPoP``; ``None`` when it has none.

    Only the ``Authorization`` header counts (RFC 6750 §2.1). A token in the
    query string is refused outright: URLs end up in logs and Referer headers.
    """
    if "access_token" in request.GET:
        raise _Refusal(
            400,
            "invalid_request",
            "access tokens are not accepted in the URL",
            dpop_required=dpop_required,
        )
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    scheme = {"bearer": "Bearer", "dpop": "DPoP"}.get(scheme.lower(), "")
    if not scheme:
        return None  # another scheme: not ours to judge
    token: str = credentials.strip(" ")
    if not _B64TOKEN.fullmatch(token):
        raise _Refusal(
            400,
            "invalid_request",
            "the Authorization header is malformed",
            scheme=scheme,
            dpop_required=dpop_required,
        )
    return scheme, token


def _dpop_required(verifier: TokenVerifier, override: bool | None) -> bool:
    # getattr: a verifier of one's own (get_verifier overridden) may know nothing of DPoP.
    return bool(getattr(verifier, "dpop_required", False)) if override is None else override


def _verify(
    request: Any,
    verifier: Callable[[], TokenVerifier] = get_verifier,
    dpop_required: bool | None = None,
) -> Claims | None:
    """The claims of the request's token, ``None`` without one; raises ``_Refusal``.

    ``Authorization: DPoP`` needs its ``DPoP`` proof header, for this method and URI (RFC 9449
    §7.1); ``Authorization: Bearer`` is refused for a DPoP-bound token, and for every token
    when DPoP is required (``dpop_required``, else the verifier's own setting)."""
    instance = verifier()
    required = _dpop_required(instance, dpop_required)
    found = _credentials(request, required)
    if found is None:
        return None
    scheme, token = found
    try:
        if scheme == "DPoP":
            if not hasattr(instance, "verify_dpop"):
                raise InvalidToken("this API does not accept DPoP-bound tokens")
            return instance.verify_dpop(
                token,
                request.headers.get("DPoP"),
                method=request.method or "GET",
                uri=request.build_absolute_uri(request.path),
            )
        if required:
            raise InvalidToken("this API accepts DPoP-bound tokens only")
        return instance.verify(token)
    except JWKSUnavailable as exc:
        raise _Refusal(
            503, "temporarily_unavailable", exc.description, retry_after=exc.retry_after
        ) from None
    except InvalidDPoPProof as exc:
        raise _Refusal(
            401, exc.error, exc.description, scheme="DPoP", dpop_required=required
        ) from None
    except TokenError as exc:
        raise _Refusal(
            401, "invalid_token", exc.description, scheme=scheme, dpop_required=required
        ) from None


def _missing(claims: Claims, scopes: Sequence[str]) -> list[str]:
    return [scope for scope in scopes if scope not in claims.scopes]


def _scheme_of(claims: Claims) -> str:
    return "Bearer" if claims.jkt is None else "DPoP"


def _scopes_for(required: Any, method: str | None, owner: object) -> Sequence[str] | None:
    """The scopes ``owner`` requires for ``method``; ``None`` if the method is not allowed.

    ``required`` is a sequence of scopes, or a dict from HTTP method (``"*"``
    for any other method) to a sequence. HEAD falls back to GET. A method the
    dict does not name is refused, so a forgotten entry fails closed.
    """
    if required is None:
        raise ImproperlyConfigured(f"{type(owner).__name__} needs required_scopes")
    if isinstance(required, str):
        return (required,)
    if isinstance(required, Mapping):
        method = (method or "GET").upper()
        for name in (method, "GET" if method == "HEAD" else None, "*"):
            if name is not None and name in required:
                scopes = required[name]
                return (scopes,) if isinstance(scopes, str) else tuple(scopes)
        return None
    return tuple(required)


# --- Plain Django --------------------------------------------------------------------------------


def _refusal_response(refusal: _Refusal) -> HttpResponse:
    response = JsonResponse(refusal.body(), status=refusal.status)
    challenge = refusal.challenge
    if challenge:
        response["WWW-Authenticate"] = challenge
    if refusal.retry_after is not None:
        response["Retry-After"] = str(refusal.retry_after)
    return response


def _authorize(
    request: HttpRequest, scopes: Sequence[str] | None, dpop_required: bool | None = None
) -> HttpResponse | None:
    """``None`` when the request may proceed (claims attached), else the refusal response."""
    try:
        claims = _verify(request, get_verifier, dpop_required)
        if claims is None:
            required = _dpop_required(get_verifier(), dpop_required)
            raise _Refusal(401, None, "an access token is required", dpop_required=required)
        scheme = _scheme_of(claims)
        if scopes is None:
            raise _Refusal(403, "insufficient_scope", "this method is not allowed", scheme=scheme)
        if _missing(claims, scopes):
            raise _Refusal(
                403,
                "insufficient_scope",
                "the token lacks a required scope",
                scopes=scopes,
                scheme=scheme,
            )
    except _Refusal as refusal:
        return _refusal_response(refusal)
    request.token_claims = claims  # type: ignore[attr-defined]
    request.auth = claims  # type: ignore[attr-defined]
    return None


F = TypeVar("F", bound=Callable[..., Any])


def require_scopes(*scopes: str, dpop_required: bool | None = None) -> Callable[[F], F]:
    """Decorate a function view so that it needs a valid access token with ``scopes``.

    With no scopes, any valid token will do. A bearer token comes as ``Authorization: Bearer``,
    a DPoP-bound one as ``Authorization: DPoP`` with its ``DPoP`` proof (RFC 9449 §7);
    ``dpop_required=True`` accepts only the latter (default: ``RESOURCE_SERVER["DPOP_REQUIRED"]``).
    The verified claims are on ``request.token_claims`` (and ``request.auth``). The view is made
    CSRF-exempt: a bearer token is never sent by a browser on its own, so
    there is no ambient credential for a cross-site request to ride on.
    Works for sync and async views.
    """

    def decorator(view: F) -> F:
        if iscoroutinefunction(view):
            # Verification may fetch keys over HTTP; keep that off the event loop.
            authorize = sync_to_async(_authorize, thread_sensitive=False)

            @wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = await authorize(request, scopes, dpop_required)
                if refused is not None:
                    return refused
                return await view(request, *args, **kwargs)

            wrapper: Any = markcoroutinefunction(async_wrapper)
        else:

            @wraps(view)
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = _authorize(request, scopes, dpop_required)
                if refused is not None:
                    return refused
                return view(request, *args, **kwargs)

        exempt: F = csrf_exempt(wrapper)
        return exempt

    return decorator


class ScopesRequiredMixin:
    """Class-based view mixin: a valid bearer token with ``required_scopes`` is needed.

    ``required_scopes`` is a sequence of scopes, or a dict from HTTP method to
    scopes (``"*"`` for the rest; methods not named are refused). Put the mixin
    first among the bases. Claims land on ``request.token_claims``. The view is
    CSRF-exempt, for the reason given in ``require_scopes``. Sync views only.
    """

    required_scopes: Sequence[str] | Mapping[str, Sequence[str]] | None = None
    #: ``True``: DPoP-bound tokens only; ``None``: ``RESOURCE_SERVER["DPOP_REQUIRED"]``.
    dpop_required: bool | None = None

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponse]:
        """The view function, CSRF-exempt."""
        view: Callable[..., HttpResponse] = csrf_exempt(super().as_view(**initkwargs))  # type: ignore[misc]
        return view

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Refuse the request unless its token carries the required scopes."""
        scopes = _scopes_for(self.required_scopes, request.method, self)
        refused = _authorize(request, scopes, self.dpop_required)
        if refused is not None:
            return refused
        response: HttpResponse = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return response
