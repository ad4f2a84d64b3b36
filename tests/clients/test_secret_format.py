"""The scannable secret format: prefix, base62 body of at least 256 bits, CRC32 checksum; the
start-up check of the prefix; the keyed lookup stored beside the hash."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from django.test import override_settings

from clients import checks
from clients.models import (
    BASE62,
    SECRET_BODY_LENGTH,
    ClientSecret,
    make_plain_secret,
    secret_checksum,
    secret_format_ok,
    secret_lookup,
    secret_lookups,
    secret_pattern,
)
from clients.services import client_create
from tests.conftest import SYSTEM

ROOT = Path(__file__).resolve().parents[2]
# The regular expression the README publishes, verbatim.
PUBLISHED = r"\bm2ms_[0-9A-Za-z]{43}[0-9A-Za-z]{6}\b"


def test_a_new_secret_has_the_published_format():
    plain = make_plain_secret()
    assert re.fullmatch(PUBLISHED, plain)
    assert re.fullmatch(secret_pattern(), plain)
    assert SECRET_BODY_LENGTH * math.log2(62) >= 256


def test_the_checksum_is_crc32_of_prefix_and_body_in_base62():
    plain = make_plain_secret()
    head, checksum = plain[:-6], plain[-6:]
    number = 0
    for char in checksum:
        number = number * 62 + BASE62.index(char)
    assert number == zlib.crc32(head.encode())
    assert secret_checksum(head) == checksum
    assert secret_checksum("m2ms_") == secret_checksum("m2ms_").rjust(6, "0")


def test_the_format_check_tells_a_lookalike():
    plain = make_plain_secret()
    assert secret_format_ok(plain)
    flipped = plain[:10] + ("a" if plain[10] != "a" else "b") + plain[11:]
    assert not secret_format_ok(flipped)  # one character of the body changed
    assert not secret_format_ok(plain[:-1] + ("0" if plain[-1] != "0" else "1"))
    assert not secret_format_ok(plain + "x")
    assert not secret_format_ok(plain[:-1])
    assert not secret_format_ok("live_" + plain[5:])
    assert not secret_format_ok(plain[:20] + "-" + plain[21:])


def test_secrets_are_random():
    assert len({make_plain_secret() for _ in range(50)}) == 50


@pytest.mark.parametrize("prefix", ["m2ms", "ab_", "no spaces_", "t+st_", "", "a" * 40 + "_"])
def test_a_bad_prefix_is_refused_at_start_up(settings, prefix):
    settings.OAUTH = {**settings.OAUTH, "SECRET_PREFIX": prefix}
    errors = checks.check_secret_prefix()
    assert [error.id for error in errors] == ["clients.E001"]


@pytest.mark.parametrize("prefix", ["m2ms_", "acme_live_", "ab1_"])
def test_a_good_prefix_passes(settings, prefix):
    settings.OAUTH = {**settings.OAUTH, "SECRET_PREFIX": prefix}
    assert checks.check_secret_prefix() == []


@pytest.mark.parametrize("prefix", ["bad", "ab_"])
def test_the_server_does_not_start_with_a_bad_prefix(prefix):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "OAUTH_SECRET_PREFIX": prefix,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "OAUTH_SECRET_PREFIX" in result.stderr and "not a valid secret prefix" in result.stderr


def test_a_bad_lifetime_cap_is_refused(settings):
    settings.OAUTH = {**settings.OAUTH, "SECRET_MAX_LIFETIME_DAYS_CAP": 0}
    assert [e.id for e in checks.check_secret_lifetime_cap()] == ["clients.E002"]


@pytest.mark.django_db
def test_a_new_secret_stores_its_keyed_lookup(org):
    client, plain = client_create(actor=SYSTEM, organization=org, name="x")
    secret = ClientSecret.objects.get(client=client)
    assert secret.lookup_hmac == secret_lookup(plain)
    assert re.fullmatch(r"[0-9a-f]{64}", secret.lookup_hmac)
    assert plain not in secret.lookup_hmac


def test_the_lookup_is_keyed_by_the_secret_key():
    plain = make_plain_secret()
    current = secret_lookup(plain)
    with override_settings(SECRET_KEY="another-secret-key-0123456789-0123456789"):
        other = secret_lookup(plain)
    assert other != current
    # After a rotation done Django's way (the old key as a fallback) both are searched.
    with override_settings(
        SECRET_KEY="another-secret-key-0123456789-0123456789",
        SECRET_KEY_FALLBACKS=["test-secret-key-for-the-suite-only-0123456789"],
    ):
        assert secret_lookups(plain) == [other, current]


def test_the_readme_publishes_this_regex_and_a_working_checker():
    readme = (ROOT / "README.md").read_text()
    assert PUBLISHED in readme
    start = readme.index("import re, zlib")
    code = readme[start : readme.index("```", start)]
    namespace: dict = {}
    exec(code, namespace)  # the README's own checker, as a scanner would copy it
    plain = make_plain_secret()
    assert namespace["is_ours"](plain)
    assert not namespace["is_ours"](plain[:-1] + ("0" if plain[-1] != "0" else "1"))
