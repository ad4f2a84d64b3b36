"""The one safe outbound HTTP fetcher: every request of ours to another server (an issuer's
discovery document and JWKS today; webhooks and leaked-secret key fetches later) goes through
``fetch`` (GET) or ``post`` (webhooks: never follows a redirect).

Fetching a URL that a customer typed is a server-side request forgery risk: the URL may name
our own loopback, the private network, or the cloud's metadata service (169.254.169.254,
fd00:ec2::254), directly or through a DNS name that resolves there, or a public server that
redirects there. So ``fetch``:

- accepts ``https://`` only;
- resolves the host once, refuses it unless every address is public, and then connects to
  that checked address itself (the TLS SNI, certificate check and ``Host`` header still use
  the name), so a second DNS answer cannot swap in another address (DNS rebinding); the
  connected peer is checked once more;
- gives up after ``TIMEOUT`` seconds in all, reads at most ``MAX_BYTES`` of body;
- follows a redirect only to the same scheme, host and port (each hop checked again).

``settings.OUTBOUND_ALLOW_INSECURE`` (off by default; for tests and local development only,
never in production) also allows ``http://`` and loopback addresses, so that tests can run an
issuer on 127.0.0.1. Private, link-local, metadata and every other range stay refused.

Standard library and Django settings only: this module is the bottom layer (portal.lib), so
clients/ and oauth/ can both use it.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.conf import settings

TIMEOUT = 3.0
MAX_BYTES = 512 * 1024
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "m2m-auth-server (+outbound)"
# Cloud metadata services, named so a refusal says what it protected.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits.
NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(Exception):
    """The fetch was refused or failed; ``str()`` says why (never with a response body)."""


@dataclass(frozen=True)
class OutboundResponse:
    """What the server answered: status, headers (names lower-cased) and body."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes


def allow_insecure() -> bool:
    """True when the test-only ``OUTBOUND_ALLOW_INSECURE`` setting is on."""
    return bool(getattr(settings, "OUTBOUND_ALLOW_INSECURE", False))


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, *, insecure: bool | None = None) -> str | None:
    """Why ``address`` may not be fetched from ("a loopback address", …); None when public.

    ``insecure`` (default: the setting) lets loopback through, for tests on 127.0.0.1."""
    if insecure is None:
        insecure = allow_insecure()
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = address_refusal(embedded, insecure=insecure)
        return f"{reason} (inside an IPv6 address)" if reason else None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if insecure else "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network(
        "100.64.0.0/10"
    ):
        return "a carrier-grade NAT address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a non-public address"
    return None


def _resolve(host: str, port: int, deadline: float) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if time.monotonic() >= deadline:
        raise OutboundRefused("timed out")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OutboundRefused(f"{host} does not resolve") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        # Drop an IPv6 zone ("fe80::1%eth0"): the address itself decides.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundRefused(f"{host} does not resolve")
    return addresses


def checked_addresses(host: str, port: int, deadline: float | None = None) -> list[IPAddress]:
    """The addresses ``host`` resolves to, all of them allowed; ``OutboundRefused`` when any is
    not (a name that resolves to a public and a private address is refused as a whole)."""
    deadline = time.monotonic() + TIMEOUT if deadline is None else deadline
    addresses = _resolve(host, port, deadline)
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            raise OutboundRefused(f"{host} resolves to {reason}")
    return addresses


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address, with the name kept for SNI, the certificate
    check and the Host header."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float, tls: bool):
        context = ssl.create_default_context() if tls else None
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((str(self._address), self.port), self.timeout)
        peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
        reason = address_refusal(peer)
        if reason:  # the address connected to is what counts
            sock.close()
            raise OutboundRefused(f"connected to {reason}")
        if self._tls:
            sock = self._context.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


def _split(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused("the URL is malformed") from exc
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_insecure()):
        raise OutboundRefused("only https:// URLs are fetched")
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        raise OutboundRefused("the URL must name a host and no credentials")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _host_header(host: str, port: int, scheme: str) -> str:
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port == default else f"{name}:{port}"


def _once(
    url: str,
    deadline: float,
    accept: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[OutboundResponse, str | None]:
    scheme, host, port, path = _split(url)
    remaining = deadline - time.monotonic()
    address = checked_addresses(host, port, deadline)[0]
    connection = _PinnedConnection(host, port, address, max(remaining, 0.01), scheme == "https")
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", _host_header(host, port, scheme))
        connection.putheader("Accept", accept)
        connection.putheader("User-Agent", USER_AGENT)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        if response.status in REDIRECT_STATUSES and method == "GET":
            return OutboundResponse(url, response.status, headers, b""), headers.get("location")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BYTES:
            raise OutboundRefused(f"the response is larger than {MAX_BYTES} bytes")
        body = bytearray()
        while len(body) <= MAX_BYTES:
            if time.monotonic() >= deadline:
                raise OutboundRefused("timed out")
            if connection.sock is not None:
                connection.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            chunk = response.read1(65536)
            if not chunk:
                break
            body.extend(chunk)
        if len(body) > MAX_BYTES:
            raise OutboundRefused(f"the response is larger than {MAX_BYTES} bytes")
        return OutboundResponse(url, response.status, headers, bytes(body)), None
    except OutboundRefused:
        raise
    except ssl.SSLError as exc:
        raise OutboundRefused(f"TLS failed with {host}") from exc
    except TimeoutError as exc:
        raise OutboundRefused("timed out") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise OutboundRefused(f"could not fetch from {host}: {type(exc).__name__}") from exc
    finally:
        connection.close()


def fetch(url: str, *, accept: str = "application/json") -> OutboundResponse:
    """GET ``url`` under the rules above; ``OutboundRefused`` says why it was not fetched.

    Any status is returned (the caller decides what a 404 means); a redirect is followed only
    within the same scheme, host and port, at most ``MAX_REDIRECTS`` times."""
    deadline = time.monotonic() + TIMEOUT
    origin = _split(url)[:3]
    for _hop in range(MAX_REDIRECTS + 1):
        response, location = _once(url, deadline, accept)
        if location is None:
            return response
        target = urljoin(url, location)
        if _split(target)[:3] != origin:
            raise OutboundRefused("the server redirects to another host")
        url = target
    raise OutboundRefused("too many redirects")


def fetch_json(url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """GET ``url`` (as ``fetch``) and its JSON object, with the answer's headers; a status other
    than 200, or a body that is not a JSON object, is ``OutboundRefused``."""
    response = fetch(url)
    if response.status != 200:
        raise OutboundRefused(f"{url} answered {response.status}")
    try:
        document = json.loads(response.body)
    except ValueError as exc:
        raise OutboundRefused(f"{url} did not answer JSON") from exc
    if not isinstance(document, dict):
        raise OutboundRefused(f"{url} did not answer a JSON object")
    return document, response.headers


def post(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str],
    timeout: float = TIMEOUT,
    accept: str = "*/*",
) -> OutboundResponse:
    """POST ``body`` to ``url`` under the rules above, within ``timeout`` seconds in all.

    A redirect is never followed (a webhook receiver answers where it was registered): its
    status is returned like any other, and the caller counts it as a failure."""
    deadline = time.monotonic() + timeout
    response, _location = _once(url, deadline, accept, method="POST", body=body, headers=headers)
    return response
