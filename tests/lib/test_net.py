"""client_ip() and X-Forwarded-Proto behind trusted proxies; address_bucket() for rate limits."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from portal.lib.net import address_bucket, client_ip, parse_trusted_proxies
from portal.serving.middleware import AccessLogMiddleware

factory = RequestFactory()


def request_from(remote: str, forwarded: str | None = None, **meta):
    extra = {"REMOTE_ADDR": remote, **meta}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return factory.get("/", **extra)


@override_settings(TRUSTED_PROXIES=[])
def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_ip(request_from("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8", "192.0.2.1"])
@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # The right-most address our own proxies did not write is the client.
        ("10.0.0.5", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # the left one is forged
        ("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.1.2.3, 192.0.2.1", "198.51.100.7"),
        # Several X-Forwarded-For headers arrive joined by a comma.
        ("10.0.0.5", "6.6.6.6,198.51.100.7", "198.51.100.7"),
        # Every hop is a proxy of ours: the farthest one is all we know.
        ("10.0.0.5", "10.9.9.9", "10.9.9.9"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.5", None, "10.0.0.5"),
        # Garbage stops the walk at the proxy that passed it on.
        ("10.0.0.5", "198.51.100.7, garbage", "10.0.0.5"),
        ("10.0.0.5", "garbage, 10.2.2.2", "10.2.2.2"),
        # Ports and IPv6 forms.
        ("10.0.0.5", "198.51.100.7:4711", "198.51.100.7"),
        ("10.0.0.5", "[2001:db8::1]:4711", "2001:db8::1"),
        ("10.0.0.5", "2001:db8::2", "2001:db8::2"),
        ("::ffff:10.0.0.5", "198.51.100.7", "198.51.100.7"),
        # An untrusted peer's header is ignored.
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),
    ],
)
def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client(
    remote, forwarded, expected
):
    assert client_ip(request_from(remote, forwarded)) == expected


@override_settings(TRUSTED_PROXIES=["unix"])
def test_a_unix_socket_peer_can_be_trusted():
    assert client_ip(request_from("", "198.51.100.7")) == "198.51.100.7"


@override_settings(TRUSTED_PROXIES=[])
def test_a_unix_socket_peer_is_not_trusted_by_default():
    assert client_ip(request_from("", "198.51.100.7")) is None


def test_a_bad_trusted_proxy_is_refused():
    with pytest.raises(ImproperlyConfigured):
        parse_trusted_proxies(["10.0.0.0/8", "proxy.example.com"])


def _is_secure_through_middleware(request) -> bool:
    seen = {}

    def view(req):
        seen["secure"] = req.is_secure()
        return HttpResponse()

    AccessLogMiddleware(view)(request)
    return seen["secure"]


@override_settings(
    TRUSTED_PROXIES=["10.0.0.0/8"], SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")
)
def test_forwarded_proto_is_believed_only_from_a_trusted_proxy():
    trusted = request_from("10.0.0.5", HTTP_X_FORWARDED_PROTO="https")
    assert _is_secure_through_middleware(trusted) is True
    direct = request_from("203.0.113.9", HTTP_X_FORWARDED_PROTO="https")
    assert _is_secure_through_middleware(direct) is False


def test_forwarded_proto_is_not_configured_without_trusted_proxies():
    assert settings.TRUSTED_PROXIES == []
    assert settings.SECURE_PROXY_SSL_HEADER is None


def test_a_wrong_trusted_proxy_stops_the_start():
    """The settings check the list once, with the same parser as client_ip()."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "TRUSTED_PROXIES": "proxy"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "TRUSTED_PROXIES: 'proxy' is not an IP address or CIDR network" in done.stderr


# --- address_bucket: what a rate limit counts -----------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2::2"),
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"),
        ("2001:0db8:0001:0002:0000:0000:0000:0001", "2001:db8:1:2:abcd::"),  # written longhand
        ("[2001:db8:1:2::1]:443", "2001:db8:1:2::9"),  # with a port, as a header hop
        ("::ffff:198.51.100.7", "198.51.100.7"),  # an IPv4-mapped address is the IPv4 one
    ],
)
def test_addresses_within_one_ipv6_64_share_a_bucket(first, second):
    assert address_bucket(first) == address_bucket(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:3::1"),  # the neighbouring /64
        ("2001:db8:1:2::1", "2001:db8:2:2::1"),
        ("198.51.100.7", "198.51.100.8"),  # IPv4: every address is its own
        ("198.51.100.7", "::ffff:198.51.100.8"),
    ],
)
def test_distinct_64s_and_ipv4_addresses_do_not(first, second):
    assert address_bucket(first) != address_bucket(second)


def test_a_bucket_is_written_as_its_network():
    assert address_bucket("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_bucket("198.51.100.7") == "198.51.100.7"
    assert address_bucket("not an address") == "not an address"  # its own bucket
