"""The safe outbound fetcher: https only, public addresses only (checked on the address actually
connected to), size and redirect limits; OUTBOUND_ALLOW_INSECURE lets tests reach 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

from portal.lib import outbound
from portal.lib.outbound import OutboundRefused, address_refusal, fetch
from tests.oidc_issuer import LocalServer, local_server


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as local:
        yield local


@pytest.fixture
def insecure(settings):
    settings.OUTBOUND_ALLOW_INSECURE = True


REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:10.0.0.1", "private"),
    ("2002:a00:1::1", "private"),  # 6to4 around 10.0.0.1
    ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 around 169.254.169.254
    ("198.18.0.1", "private"),  # benchmarking range
    ("192.0.2.1", "private"),  # documentation range
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_it_refuses_every_non_public_range(address: str, kind: str) -> None:
    reason = address_refusal(ipaddress.ip_address(address), insecure=False)
    assert reason is not None and kind in reason


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_it_refuses_to_fetch_a_literal_address_of_each_range(address: str, kind: str) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(OutboundRefused, match=kind):
        fetch(f"https://{host}/.well-known/openid-configuration")


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_it_allows_public_addresses(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), insecure=False) is None


def test_a_hostname_that_resolves_to_loopback_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="localhost resolves to a loopback address"):
        fetch("https://localhost/jwks")


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="does not resolve"):
        fetch("https://no-such-host.invalid/jwks")


@pytest.mark.parametrize(
    "url",
    ["http://8.8.8.8/jwks", "ftp://8.8.8.8/jwks", "file:///etc/passwd", "gopher://x/"],
)
def test_only_https_is_fetched(url: str) -> None:
    with pytest.raises(OutboundRefused, match="only https"):
        fetch(url)


@pytest.mark.parametrize(
    "url", ["https://user:pw@8.8.8.8/", "https:///path", "https://[::1/", "https://h:99999/"]
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(OutboundRefused):
        fetch(url)


def test_without_the_setting_even_a_local_server_is_unreachable(server) -> None:
    host, port, routes = server.host, server.port, server.routes
    routes["/ok"] = (200, {}, b"{}")
    with pytest.raises(OutboundRefused, match="only https"):
        fetch(f"http://{host}:{port}/ok")


def test_the_insecure_setting_is_off_by_default() -> None:
    assert outbound.allow_insecure() is False


def test_the_insecure_setting_allows_http_on_loopback_only(insecure, server) -> None:
    host, port, routes = server.host, server.port, server.routes
    routes["/ok"] = (200, {"Cache-Control": "max-age=60"}, b'{"a": 1}')
    response = fetch(f"http://{host}:{port}/ok")
    assert (response.status, response.body) == (200, b'{"a": 1}')
    assert response.headers["cache-control"] == "max-age=60"
    assert address_refusal(ipaddress.ip_address("127.0.0.1")) is None
    for still_refused in ("10.0.0.1", "169.254.169.254", "fd00:ec2::254", "::ffff:10.0.0.1"):
        assert address_refusal(ipaddress.ip_address(still_refused)) is not None


def test_it_keeps_the_host_name_for_the_host_header(insecure, server) -> None:
    server.routes["/ok"] = (200, {}, b"{}")
    fetch(f"http://localhost:{server.port}/ok")
    assert server.hosts == [f"localhost:{server.port}"]


def test_a_larger_body_than_the_cap_is_refused(insecure, server) -> None:
    host, port, routes = server.host, server.port, server.routes
    routes["/big"] = (200, {}, b"x" * (outbound.MAX_BYTES + 1))
    routes["/fits"] = (200, {}, b"x" * outbound.MAX_BYTES)
    with pytest.raises(OutboundRefused, match="larger than"):
        fetch(f"http://{host}:{port}/big")
    assert len(fetch(f"http://{host}:{port}/fits").body) == outbound.MAX_BYTES


def test_a_redirect_on_the_same_host_is_followed(insecure, server) -> None:
    host, port, routes = server.host, server.port, server.routes
    routes["/old"] = (302, {"Location": "/new"}, b"")
    routes["/new"] = (200, {}, b"moved")
    assert fetch(f"http://{host}:{port}/old").body == b"moved"


@pytest.mark.parametrize(
    "location",
    [
        "http://localhost:{port}/new",  # a name that resolves to 127.0.0.1
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "https://127.0.0.1:{port}/new",
        "http://127.0.0.1:1/new",
    ],
)
def test_a_redirect_to_another_host_is_refused(insecure, server, location: str) -> None:
    host, port, routes = server.host, server.port, server.routes
    routes["/old"] = (301, {"Location": location.format(port=port)}, b"")
    routes["/new"] = (200, {}, b"should not be read")
    with pytest.raises(OutboundRefused, match="redirects to another host"):
        fetch(f"http://{host}:{port}/old")


def test_a_redirect_loop_stops(insecure, server) -> None:
    host, port, routes = server.host, server.port, server.routes
    routes["/loop"] = (307, {"Location": "/loop"}, b"")
    with pytest.raises(OutboundRefused, match="too many redirects"):
        fetch(f"http://{host}:{port}/loop")


def test_a_server_that_is_not_listening_is_a_refusal(insecure) -> None:
    with pytest.raises(OutboundRefused, match="could not fetch"):
        fetch("http://127.0.0.1:1/jwks")


def test_a_server_that_never_answers_times_out(insecure, monkeypatch) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    monkeypatch.setattr(outbound, "TIMEOUT", 0.2)
    try:
        with pytest.raises(OutboundRefused, match="timed out"):
            fetch(f"http://127.0.0.1:{listener.getsockname()[1]}/jwks")
    finally:
        listener.close()
