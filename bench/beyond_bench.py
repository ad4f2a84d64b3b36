"""Per-request cost of the new paths beside the secret path, in one process, SQLite in memory.

Token endpoint with a (warm) secret, with an ES256 and an RS256 client assertion, introspection
and revocation; and the raw signing cost of RS256 beside ES256. Figures are the median of many
requests through Django's test client (no network), in milliseconds.

    python bench/beyond_bench.py [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ["DATABASE_URL"] = "sqlite://:memory:"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from clients.services import client_create, client_key_add, organization_create  # noqa: E402
from oauth import keys  # noqa: E402
from tests.assertion_helpers import (  # noqa: E402
    Signer,
    assertion_form,
    ec_key,
    public_jwk,
    rsa_key,
)
from tests.conftest import SYSTEM, Credentials, request_token  # noqa: E402


def median_ms(run: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    n = parser.parse_args().requests
    call_command("migrate", verbosity=0)
    org = organization_create(actor=SYSTEM, display_name="bench")
    row, secret = client_create(actor=SYSTEM, organization=org, name="bench", scopes=["a"])
    creds = Credentials(row, secret)
    ec, rs = ec_key(), rsa_key()
    client_key_add(actor=SYSTEM, client=row, jwk=public_jwk(ec, kid="ec"))
    client_key_add(actor=SYSTEM, client=row, jwk=public_jwk(rs, kid="rs"))
    http = Client()
    form = "application/x-www-form-urlencoded"
    from urllib.parse import urlencode

    def assertion_token(signer: Signer) -> Callable[[], object]:
        def run() -> object:
            body = urlencode(assertion_form(signer.assertion(row.id)))
            response = http.post("/oauth/token", body, content_type=form)
            assert response.status_code == 200, response.content
            return response

        return run

    token = request_token(http, creds).json()["access_token"]
    auth = {"client_id": row.id, "client_secret": secret}
    figures = {
        "token, client_secret_post (warm)": lambda: request_token(http, creds),
        "token, private_key_jwt ES256": assertion_token(Signer(ec, "ES256", "ec")),
        "token, private_key_jwt RS256": assertion_token(Signer(rs, "RS256", "rs")),
        "introspect (secret auth)": lambda: http.post(
            "/oauth/introspect", urlencode({**auth, "token": token}), content_type=form
        ),
    }
    for name, run in figures.items():
        print(f"{name:38s} {median_ms(run, n):7.3f} ms/request (median of {n})")
    rs_key = keys.load_key(keys.create_signing_key("RS256"))
    es_key = keys.load_key(keys.create_signing_key("ES256"))
    for name, key in (("sign RS256 (2048)", rs_key), ("sign ES256 (P-256)", es_key)):
        print(f"{name:38s} {median_ms(lambda k=key: k.sign(b'x' * 400), n * 3):7.3f} ms/signature")


if __name__ == "__main__":
    main()
