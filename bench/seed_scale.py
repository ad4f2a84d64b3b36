"""Bench data (not part of the product): 10,000 organizations and 100,000 clients.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/m2m_bench_scale SECRET_KEY=... \
        python bench/seed_scale.py

Each client holds one active secret. Seeding skips the services on purpose (bulk_create, no
audit events): it is data for measuring, made in seconds rather than hours. Runs once per database
(it does nothing when the clients are already there). Afterwards it times the management API's
client list (the selector, the pagination and the serializer, as ClientListView.get runs them)
for the largest organization and a typical one, and prints one JSON line last: a seeded client's
id and secret, for the token benchmark.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

ORGANIZATIONS = 10_000
CLIENTS = 100_000
# The first organization is a big customer: its list is the one that has to page.
BIG_ORGANIZATION_CLIENTS = 1_000
BATCH = 5_000
# Every seeded secret is this one value (bench data only): the benchmark can then use any client.
PLAIN_SECRET = "test_bench-scale-secret-for-measuring-only-0123456789abcdef"


def seed() -> None:
    from django.db import transaction
    from django.utils import timezone

    from clients.models import (
        ApiClient,
        ClientSecret,
        Organization,
        hash_secret,
        new_client_id,
        new_organization_id,
    )

    if ApiClient.objects.count() >= CLIENTS:
        print(f"already seeded: {ApiClient.objects.count()} clients")
        return
    started = time.perf_counter()
    # ONE argon2id hash, reused for every secret: hashing 100,000 secrets at the production cost
    # (about 30 ms each) would take most of an hour and measure nothing the token path does.
    secret_hash = hash_secret(PLAIN_SECRET)
    now = timezone.now()
    with transaction.atomic():
        organizations = [
            Organization(id=new_organization_id(), display_name=f"Org {i}", create_time=now)
            for i in range(ORGANIZATIONS)
        ]
        Organization.objects.bulk_create(organizations, batch_size=BATCH)
        for start in range(0, CLIENTS, BATCH):
            clients = []
            for i in range(start, min(start + BATCH, CLIENTS)):
                if i < BIG_ORGANIZATION_CLIENTS:
                    organization = organizations[0]
                else:
                    organization = organizations[1 + i % (ORGANIZATIONS - 1)]
                clients.append(
                    ApiClient(
                        id=new_client_id(),
                        organization=organization,
                        name=f"client {i}",
                        scopes=["read:things", "write:things"],
                        audience=["https://api.example.com"],
                        custom_claims=[{"key": "tier", "value": "gold"}],
                        create_time=now,
                    )
                )
            ApiClient.objects.bulk_create(clients, batch_size=BATCH)
            ClientSecret.objects.bulk_create(
                [
                    ClientSecret(
                        client=client,
                        secret_hash=secret_hash,
                        secret_suffix=PLAIN_SECRET[-4:],
                        create_time=now,
                    )
                    for client in clients
                ],
                batch_size=BATCH,
            )
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"seeded {ORGANIZATIONS} organizations and {CLIENTS} clients "
        f"in {time.perf_counter() - started:.1f} s"
    )


def time_client_list() -> None:
    """Server time and queries of one page of the client list (page_size 100)."""
    from django.db import connection
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext

    from clients import selectors
    from clients.models import Organization
    from portal.api import serializers
    from portal.api.pagination import page

    big = Organization.objects.annotate(n=Count("clients")).order_by("-n").first()
    typical = Organization.objects.exclude(pk=big.pk).order_by("id").first()
    for label, organization in (("largest", big), ("typical", typical)):
        best = float("inf")
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                org = selectors.organization_get(organization.id)
                items, paging = page(
                    selectors.client_list(org), {"page_size": "100"}, f"clients:{org.id}"
                )
                json.dumps({"clients": [serializers.client_json(c) for c in items], **paging})
                best = min(best, time.perf_counter() - started)
        print(
            f"client list API page ({label} organization, {paging['total_size']} clients, "
            f"page of {len(items)}): {best * 1000:.1f} ms, {len(queries)} queries"
        )


def main() -> None:
    import django

    django.setup()
    from clients.models import ApiClient
    from oauth import keys

    key = keys.ensure_signing_key()
    if key.algorithm != "RS256":
        keys.rotate_signing_key(algorithm="RS256")
    seed()
    time_client_list()
    # A client from the middle of the table, not the first one inserted.
    sample = ApiClient.objects.order_by("id")[CLIENTS // 2 : CLIENTS // 2 + 1].get()
    print(json.dumps({"client_id": sample.id, "client_secret": PLAIN_SECRET}))


if __name__ == "__main__":
    main()
