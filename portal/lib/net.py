"""The client's IP address, in one place, with trusted reverse proxies.

Everything that wants "who is calling" (audit events, rate limits, access logs)
calls :func:`client_ip` (rate limits count its answer by :func:`address_bucket`).
The rule: the peer address (``REMOTE_ADDR``) is the client, unless the peer is
one of ``settings.TRUSTED_PROXIES``; then the client is the right-most address
in ``X-Forwarded-For`` that is not a trusted proxy.
Addresses to the left of that one were written by the client itself and prove
nothing, so they are never used.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# ``unix`` in TRUSTED_PROXIES trusts a peer on a Unix socket (gunicorn leaves REMOTE_ADDR empty).
UNIX_SOCKET = "unix"


def parse_trusted_proxies(values: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Networks from addresses or CIDRs; raises ImproperlyConfigured on anything else."""
    networks = []
    for value in values:
        if value == UNIX_SOCKET:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {value!r} is not an IP address or CIDR network"
            ) from exc
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted(values: tuple[str, ...]) -> tuple[tuple[IPNetwork, ...], bool]:
    return parse_trusted_proxies(values), UNIX_SOCKET in values


def _networks() -> tuple[tuple[IPNetwork, ...], bool]:
    return _trusted(tuple(getattr(settings, "TRUSTED_PROXIES", ())))


@lru_cache(maxsize=4096)
def parse_ip(value: str) -> IPAddress | None:
    """An address from a header hop: bare, ``[v6]:port`` or ``v4:port``; None if malformed.

    Cached: the same few proxy and client addresses come back on every request.
    """
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)
def _address_text(remote: str) -> str:
    """A peer address as ``client_ip`` gives it: normalized when it parses, else as it came."""
    peer = parse_ip(remote)
    return str(peer) if peer is not None else remote


# An IPv6 client usually owns a whole /64 (RFC 6177 and every ISP's practice): its addresses
# within it are one client to a rate limit.
IPV6_BUCKET_PREFIX = 64


@lru_cache(maxsize=4096)
def address_bucket(address: str) -> str:
    """The unit in which rate limits count a client address (``client_ip``'s answer): an IPv4
    address itself, an IPv6 address's /64 (``2001:db8:1:2::/64``), so that a client cannot
    rotate through the addresses of its own network to get a fresh budget each time. Anything
    that does not parse is its own bucket."""
    parsed = parse_ip(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((parsed, IPV6_BUCKET_PREFIX), strict=False)
        return str(network)
    return str(parsed)


def is_trusted_proxy(address: IPAddress) -> bool:
    networks, _ = _networks()
    return any(address in network for network in networks)


def peer_is_trusted(request: HttpRequest) -> bool:
    """Whether the direct peer of this request is a trusted proxy."""
    networks, trust_unix = _networks()
    if not networks and not trust_unix:
        return False
    remote = request.META.get("REMOTE_ADDR") or ""
    if not remote:
        return trust_unix
    address = parse_ip(remote)
    return address is not None and any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The calling client's IP address as a string (None when it cannot be known)."""
    remote = request.META.get("REMOTE_ADDR") or ""
    if not peer_is_trusted(request):
        return _address_text(remote) if remote else None
    peer = parse_ip(remote) if remote else None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    # The right-most hop was written by our own proxy; walk left while hops are proxies we trust.
    candidate: str | None = str(peer) if peer is not None else None
    for hop in reversed([part for part in forwarded.split(",") if part.strip()]):
        address = parse_ip(hop)
        if address is None:
            # Garbage from beyond a trusted proxy: the proxy that passed it on is all we know.
            return candidate
        candidate = str(address)
        if not is_trusted_proxy(address):
            return candidate
    return candidate


def drop_untrusted_forwarded_proto(request: HttpRequest) -> None:
    """Forget ``X-Forwarded-Proto`` unless a trusted proxy sent it.

    ``SECURE_PROXY_SSL_HEADER`` makes Django believe this header; a client talking to us
    directly could otherwise claim HTTPS over plain HTTP.
    """
    if "HTTP_X_FORWARDED_PROTO" in request.META and not peer_is_trusted(request):
        del request.META["HTTP_X_FORWARDED_PROTO"]
