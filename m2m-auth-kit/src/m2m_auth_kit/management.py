"""The management SDK: organizations, clients, secrets and public keys, from the provider's backend.

A typed client for the server's management REST API (``/api/v1``)::

    from m2m_auth_kit.management import ManagementClient

    mgmt = ManagementClient("https://auth.example.com", client_id, client_secret)
    org = mgmt.organizations.create("Acme Corp")
    created = mgmt.clients.create(org.id, name="deployer", scopes=["deploy:applications"])
    created.client.client_id, created.plain_secret      # the secret is shown this once
    for client in mgmt.clients.list(org.id):            # every page, lazily
        ...

It gets its own management token with ``ClientCredentials`` (client-credentials grant), keeps
it until shortly before it expires, and fetches a new one when the API answers 401. Every
error of the API raises ``ManagementAPIError`` with the API's ``code`` (gRPC status),
``message`` and field violations. Requests go through ``session`` (a ``requests.Session`` or
``httpx.Client``) when given, urllib otherwise, like the rest of the kit.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from m2m_auth_kit import _http
from m2m_auth_kit.client import ClientCredentials, TokenRequestError

__all__ = [
    "Client",
    "CreatedClient",
    "CreatedSecret",
    "CustomClaim",
    "FieldViolation",
    "ManagementAPIError",
    "ManagementClient",
    "Organization",
    "PublicKey",
    "Secret",
]

_USER_AGENT = "m2m-auth-kit/0.1 (management)"
# gRPC codes the API uses, for errors that never reached it.
_UNAUTHENTICATED = (16, "UNAUTHENTICATED")
_UNAVAILABLE = (14, "UNAVAILABLE")
_UNKNOWN = (2, "UNKNOWN")


# --- Errors --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request: its path (``scopes[1]``) and what is wrong with it."""

    field: str
    description: str


class ManagementAPIError(Exception):
    """Any failed management call: the API's error, or why no answer came.

    Attributes:
        status_code: the HTTP status, ``None`` when no answer arrived.
        code: the gRPC status code of the API's error body (3 invalid argument, 5 not
            found, 7 permission denied, 8 resource exhausted, 16 unauthenticated, ...).
        error_code: its name (``INVALID_ARGUMENT``, ``NOT_FOUND``, ...).
        message: the API's message.
        field_violations: the invalid fields, for ``INVALID_ARGUMENT``.
        retry_after: seconds from ``Retry-After`` (429, 503), else ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        code: int,
        error_code: str,
        field_violations: Sequence[FieldViolation] = (),
        retry_after: int | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.code = code
        self.error_code = error_code
        self.field_violations = list(field_violations)
        self.retry_after = retry_after
        details = "; ".join(f"{v.field}: {v.description}" for v in self.field_violations)
        super().__init__(f"{error_code}: {message}" + (f" ({details})" if details else ""))

    @classmethod
    def from_response(cls, response: _http.HTTPResponse) -> ManagementAPIError:
        """The error an answer carries; an answer that is not in the API's format keeps its
        HTTP status and says so."""
        retry_after = response.headers.get("retry-after", "")
        wait = int(retry_after) if retry_after.isdigit() else None
        try:
            body = json.loads(response.body)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("code"), int):
            return cls(
                f"HTTP {response.status}, not an error of the management API",
                status_code=response.status,
                code=_UNKNOWN[0],
                error_code=_UNKNOWN[1],
                retry_after=wait,
            )
        error_code, violations = _UNKNOWN[1], []
        for detail in body.get("details") or []:
            if isinstance(detail, dict):
                error_code = str(detail.get("error_code") or error_code)
                for item in detail.get("field_violations") or []:
                    if isinstance(item, dict):
                        violations.append(
                            FieldViolation(
                                str(item.get("field", "")), str(item.get("description", ""))
                            )
                        )
        return cls(
            str(body.get("message", "")),
            status_code=response.status,
            code=body["code"],
            error_code=error_code,
            field_violations=violations,
            retry_after=wait,
        )


# --- What the API returns ------------------------------------------------------------------------


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


@dataclass(frozen=True)
class Organization:
    """A customer organization."""

    id: str
    display_name: str
    external_id: str | None
    create_time: datetime
    update_time: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """From the API's JSON."""
        return cls(
            id=data["id"],
            display_name=data["display_name"],
            external_id=data.get("external_id"),
            create_time=_time(data["create_time"]),
            update_time=_time(data["update_time"]),
        )


@dataclass(frozen=True)
class Secret:
    """A client secret as the API shows it: never the secret itself, only its last characters."""

    id: str
    secret_suffix: str
    status: str
    create_time: datetime
    update_time: datetime
    last_used_time: datetime | None
    expire_time: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """From the API's JSON."""
        return cls(
            id=data["id"],
            secret_suffix=data["secret_suffix"],
            status=data["status"],
            create_time=_time(data["create_time"]),
            update_time=_time(data["update_time"]),
            last_used_time=_optional_time(data.get("last_used_time")),
            expire_time=_optional_time(data.get("expire_time")),
        )


@dataclass(frozen=True)
class PublicKey:
    """A public key a client signs its ``private_key_jwt`` assertions with."""

    id: str
    kid: str
    kty: str
    alg: str
    jwk: dict[str, Any]
    create_time: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """From the API's JSON."""
        return cls(
            id=data["id"],
            kid=data["kid"],
            kty=data["kty"],
            alg=data["alg"],
            jwk=dict(data["jwk"]),
            create_time=_time(data["create_time"]),
        )


@dataclass(frozen=True)
class CustomClaim:
    """A claim added to every token of a client."""

    key: str
    value: str


@dataclass(frozen=True)
class Client:
    """An API client (an M2M application) of an organization."""

    client_id: str
    organization_id: str
    name: str
    description: str
    scopes: list[str]
    audience: list[str]
    custom_claims: list[CustomClaim]
    expiry: int
    secrets: list[Secret]
    keys: list[PublicKey]
    create_time: datetime
    update_time: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """From the API's JSON."""
        return cls(
            client_id=data["client_id"],
            organization_id=data["organization_id"],
            name=data["name"],
            description=data.get("description", ""),
            scopes=list(data.get("scopes", [])),
            audience=list(data.get("audience", [])),
            custom_claims=[
                CustomClaim(c["key"], c["value"]) for c in data.get("custom_claims", [])
            ],
            expiry=data["expiry"],
            secrets=[Secret.from_json(s) for s in data.get("secrets", [])],
            keys=[PublicKey.from_json(k) for k in data.get("keys", [])],
            create_time=_time(data["create_time"]),
            update_time=_time(data["update_time"]),
        )


@dataclass(frozen=True)
class CreatedClient:
    """A new client and its first secret, in plain text this once: store it now."""

    client: Client
    plain_secret: str = field(repr=False)


@dataclass(frozen=True)
class CreatedSecret:
    """A new secret, in plain text this once: store it now."""

    secret: Secret
    plain_secret: str = field(repr=False)


# --- The client ----------------------------------------------------------------------------------


def _claims_json(claims: Sequence[CustomClaim | Mapping[str, str]]) -> list[dict[str, str]]:
    return [
        {"key": c.key, "value": c.value} if isinstance(c, CustomClaim) else dict(c) for c in claims
    ]


def _quote(value: str) -> str:
    # An id goes in the path as one segment, whatever it contains.
    return urllib.parse.quote(value, safe="")


class ManagementClient:
    """The management API of one server, with its own management client's credentials.

    Args:
        env_url: the server's base URL (e.g. ``https://auth.example.com``); the API is
            under ``/api/v1``.
        client_id, client_secret: a management client's credentials.
        token_url: the token endpoint (default ``{env_url}/oauth/token``).
        session: a ``requests.Session`` or ``httpx.Client`` for every request, token
            requests included.
        timeout: seconds to wait for each answer.

    Thread-safe: the token is shared, and each call is one request (two after a 401).
    """

    def __init__(
        self,
        env_url: str,
        client_id: str,
        client_secret: str,
        *,
        token_url: str | None = None,
        session: object | None = None,
        timeout: float = 10,
    ) -> None:
        """Configure the client; the first call fetches the management token."""
        _http.check_session(session)  # its calls are sync: no httpx.AsyncClient
        base = env_url.rstrip("/")
        self.api_url = f"{base}/api/v1"
        self.session = session
        self.timeout = timeout
        self.credentials = ClientCredentials(
            token_url or f"{base}/oauth/token",
            client_id,
            client_secret,
            session=session,
            timeout=timeout,
        )
        self.organizations = Organizations(self)
        self.clients = Clients(self)
        self.secrets = Secrets(self)
        self.keys = PublicKeys(self)

    def __repr__(self) -> str:
        return f"<ManagementClient {self.api_url} client_id={self.credentials.client_id!r}>"

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One call of the API: its JSON answer, or ``ManagementAPIError``.

        A 401 (the token expired early, was revoked, or the keys rotated) gets
        one new token and one retry.
        """
        url = self.api_url + path
        if query:
            pairs = {name: value for name, value in query.items() if value is not None}
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        body = None if json_body is None else json.dumps(json_body).encode()
        token = self._token(None)
        response = self._send(method, url, body, token)
        if response.status == 401:
            response = self._send(method, url, body, self._token(token))
        if not 200 <= response.status < 300:
            raise ManagementAPIError.from_response(response)
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ManagementAPIError(
                "the answer is not a JSON object",
                status_code=response.status,
                code=_UNKNOWN[0],
                error_code=_UNKNOWN[1],
            )
        return answer

    def _token(self, rejected: str | None) -> str:
        try:
            if rejected is None:
                return self.credentials.token()
            return self.credentials._token_after_rejection(rejected)
        except TokenRequestError as exc:
            # One exception class for every failure of the SDK; the OAuth error stays readable.
            raise ManagementAPIError(
                f"no management token: {exc}",
                status_code=exc.status_code,
                code=_UNAUTHENTICATED[0] if exc.status_code else _UNAVAILABLE[0],
                error_code=_UNAUTHENTICATED[1] if exc.status_code else _UNAVAILABLE[1],
            ) from exc

    def _send(self, method: str, url: str, body: bytes | None, token: str) -> _http.HTTPResponse:
        headers = {
            "Accept": "application/json",
            "Authorization": f"Bearer {token}",
            "User-Agent": _USER_AGENT,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            return _http.send(
                method, url, headers=headers, body=body, timeout=self.timeout, session=self.session
            )
        except _http.HTTPFailure as exc:
            raise ManagementAPIError(
                str(exc), status_code=None, code=_UNAVAILABLE[0], error_code=_UNAVAILABLE[1]
            ) from None

    def pages(self, path: str, items: str, page_size: int | None) -> Iterator[list[dict[str, Any]]]:
        """Each page of a list, following ``next_page_token`` until the last one."""
        token = ""
        while True:
            answer = self.request(
                "GET", path, query={"page_size": page_size, "page_token": token or None}
            )
            yield list(answer.get(items, []))
            token = answer.get("next_page_token") or ""
            if not token:
                return


class _Resource:
    def __init__(self, api: ManagementClient) -> None:
        self._api = api


class Organizations(_Resource):
    """``mgmt.organizations``: create, get, update, list."""

    def create(self, display_name: str, *, external_id: str | None = None) -> Organization:
        """A new organization."""
        body: dict[str, Any] = {"display_name": display_name}
        if external_id is not None:
            body["external_id"] = external_id
        answer = self._api.request("POST", "/organizations", json_body=body)
        return Organization.from_json(answer["organization"])

    def get(self, organization_id: str) -> Organization:
        """One organization (``NOT_FOUND`` if there is none)."""
        answer = self._api.request("GET", f"/organizations/{_quote(organization_id)}")
        return Organization.from_json(answer["organization"])

    def update(
        self,
        organization_id: str,
        *,
        display_name: str | None = None,
        external_id: str | None = None,
    ) -> Organization:
        """Change the fields given; the others stay."""
        body = {
            name: value
            for name, value in (("display_name", display_name), ("external_id", external_id))
            if value is not None
        }
        answer = self._api.request(
            "PATCH", f"/organizations/{_quote(organization_id)}", json_body=body
        )
        return Organization.from_json(answer["organization"])

    def list(self, *, page_size: int | None = None) -> Iterator[Organization]:
        """Every organization, oldest first, fetched a page (``page_size``) at a time."""
        for page in self._api.pages("/organizations", "organizations", page_size):
            yield from (Organization.from_json(item) for item in page)


class Clients(_Resource):
    """``mgmt.clients``: create, get, list, update, delete an organization's clients."""

    def create(
        self,
        organization_id: str,
        *,
        name: str,
        description: str | None = None,
        scopes: Sequence[str] | None = None,
        audience: Sequence[str] | None = None,
        custom_claims: Sequence[CustomClaim | Mapping[str, str]] | None = None,
        expiry: int | None = None,
    ) -> CreatedClient:
        """A new client and its first secret (in ``plain_secret``, this once)."""
        body = _client_body(name, description, scopes, audience, custom_claims, expiry)
        answer = self._api.request(
            "POST", f"/organizations/{_quote(organization_id)}/clients", json_body=body
        )
        return CreatedClient(Client.from_json(answer["client"]), answer["plain_secret"])

    def get(self, organization_id: str, client_id: str) -> Client:
        """One client of the organization (``NOT_FOUND`` for another organization's)."""
        answer = self._api.request("GET", _client_path(organization_id, client_id))
        return Client.from_json(answer["client"])

    def list(self, organization_id: str, *, page_size: int | None = None) -> Iterator[Client]:
        """Every client of the organization, oldest first, a page at a time."""
        path = f"/organizations/{_quote(organization_id)}/clients"
        for page in self._api.pages(path, "clients", page_size):
            yield from (Client.from_json(item) for item in page)

    def update(
        self,
        organization_id: str,
        client_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        scopes: Sequence[str] | None = None,
        audience: Sequence[str] | None = None,
        custom_claims: Sequence[CustomClaim | Mapping[str, str]] | None = None,
        expiry: int | None = None,
    ) -> Client:
        """Change the fields given; the others stay."""
        body = _client_body(name, description, scopes, audience, custom_claims, expiry)
        answer = self._api.request(
            "PATCH", _client_path(organization_id, client_id), json_body=body
        )
        return Client.from_json(answer["client"])

    def delete(self, organization_id: str, client_id: str) -> None:
        """Delete the client: its secrets and keys stop working at once."""
        self._api.request("DELETE", _client_path(organization_id, client_id))


class Secrets(_Resource):
    """``mgmt.secrets``: add (rotate), list, delete a client's secrets."""

    def add(
        self,
        organization_id: str,
        client_id: str,
        *,
        expiry_seconds: int | None = None,
        expire_time: datetime | None = None,
    ) -> CreatedSecret:
        """A new secret beside the old ones (in ``plain_secret``, this once)."""
        body: dict[str, Any] = {}
        if expiry_seconds is not None:
            body["expiry_seconds"] = expiry_seconds
        if expire_time is not None:
            body["expire_time"] = expire_time.isoformat()
        answer = self._api.request(
            "POST",
            f"{_client_path(organization_id, client_id)}/secrets",
            json_body=body or None,
        )
        return CreatedSecret(Secret.from_json(answer["secret"]), answer["plain_secret"])

    def list(self, organization_id: str, client_id: str) -> list[Secret]:
        """The client's secrets (never the secrets themselves)."""
        answer = self._api.request("GET", f"{_client_path(organization_id, client_id)}/secrets")
        return [Secret.from_json(item) for item in answer["secrets"]]

    def delete(self, organization_id: str, client_id: str, secret_id: str) -> None:
        """Delete one secret: it stops working at once."""
        path = f"{_client_path(organization_id, client_id)}/secrets/{_quote(secret_id)}"
        self._api.request("DELETE", path)


class PublicKeys(_Resource):
    """``mgmt.keys``: a client's public keys for ``private_key_jwt``."""

    def add(self, organization_id: str, client_id: str, jwk: Mapping[str, Any]) -> PublicKey:
        """Register a public key (a JWK; RSA, or EC P-256/P-384)."""
        answer = self._api.request(
            "POST", f"{_client_path(organization_id, client_id)}/keys", json_body={"jwk": jwk}
        )
        return PublicKey.from_json(answer["key"])

    def list(self, organization_id: str, client_id: str) -> list[PublicKey]:
        """The client's public keys."""
        answer = self._api.request("GET", f"{_client_path(organization_id, client_id)}/keys")
        return [PublicKey.from_json(item) for item in answer["keys"]]

    def delete(self, organization_id: str, client_id: str, key_id: str) -> None:
        """Remove a key (by its ``id``): assertions it signs are refused at once."""
        path = f"{_client_path(organization_id, client_id)}/keys/{_quote(key_id)}"
        self._api.request("DELETE", path)


def _client_path(organization_id: str, client_id: str) -> str:
    return f"/organizations/{_quote(organization_id)}/clients/{_quote(client_id)}"


def _client_body(
    name: str | None,
    description: str | None,
    scopes: Sequence[str] | None,
    audience: Sequence[str] | None,
    custom_claims: Sequence[CustomClaim | Mapping[str, str]] | None,
    expiry: int | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if description is not None:
        body["description"] = description
    if scopes is not None:
        body["scopes"] = list(scopes)
    if audience is not None:
        body["audience"] = list(audience)
    if custom_claims is not None:
        body["custom_claims"] = _claims_json(custom_claims)
    if expiry is not None:
        body["expiry"] = expiry
    return body
