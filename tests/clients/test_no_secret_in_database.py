"""After secrets are made, used, reported leaked (GitHub's endpoint and the API) and reminded
about, no column of any table holds a plain secret or an unkeyed hash of one."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection

from clients.models import ClientSecret, hash_secret
from clients.services import secret_add, secret_report_leak
from tests.conftest import SYSTEM, Credentials, request_token, run_worker

pytestmark = pytest.mark.django_db


def forms_of(plain: str) -> list[str]:
    """The secret and its unkeyed digests, as hex (both cases)."""
    raw = plain.encode()
    digests = [hashlib.new(name, raw).hexdigest() for name in ("sha256", "sha1", "md5")]
    return [plain, *digests, *(d.upper() for d in digests)]


def database_text() -> str:
    """Every value of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                chunks.extend(
                    value.decode(errors="replace")
                    if isinstance(value, bytes | memoryview)
                    else str(value)
                    for value in row
                    if value is not None
                )
    return "\n".join(chunks)


def test_no_plain_secret_and_no_unkeyed_hash_anywhere(client, guide_client, owner, admin):
    plains = [guide_client.secret]
    # Used at the token endpoint (cached, touched), a second secret added, an old-format one
    # used (its keyed lookup written on verification), one reported leaked twice.
    assert request_token(client, guide_client).status_code == 200
    _second, second_plain = secret_add(actor=SYSTEM, client=guide_client.client)
    plains.append(second_plain)
    old = "test_" + "Q" * 43
    ClientSecret.objects.create(
        client=guide_client.client, secret_hash=hash_secret(old), secret_suffix=old[-4:]
    )
    plains.append(old)
    assert request_token(client, Credentials(guide_client.client, old)).status_code == 200
    for _ in range(2):
        secret_report_leak(actor=SYSTEM, token=second_plain, url="https://x.test/a")
    secret_report_leak(actor=SYSTEM, token=old, url="https://x.test/b", source="paste")
    run_worker()
    text = database_text()
    assert "secret_leak" in text or "secret.leak" in text  # the scan does read the audit log
    for plain in plains:
        for form in forms_of(plain):
            assert form not in text, f"{form[:8]}… found in the database"
