"""clients.selectors.client_list: a page of clients costs the same queries for 5 clients or 50.

The secrets and keys come in one prefetch each and the active-secret count in a subquery, so the
management API's client list (paged and rendered here as its view does) never queries per client.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients import selectors
from clients.services import client_create, secret_add, secret_set_status
from portal.api import serializers
from portal.api.pagination import page
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def make_clients(organization, count: int) -> None:
    for i in range(count):
        client, _ = client_create(
            actor=SYSTEM, organization=organization, name=f"client {i}", scopes=["read"]
        )
        if i % 2:
            secret_add(actor=SYSTEM, client=client)  # some clients hold two secrets


def list_page_queries(organization_id: str, query: dict) -> tuple[list[str], dict]:
    """Run what ClientListView.get runs, and return the SQL it sent and the page it made."""
    with CaptureQueriesContext(connection) as captured:
        organization = selectors.organization_get(organization_id)
        items, paging = page(
            selectors.client_list(organization), query, f"clients:{organization.id}"
        )
        body = {"clients": [serializers.client_json(c) for c in items], **paging}
    return [q["sql"] for q in captured.captured_queries], body


@pytest.mark.parametrize("query", [{"page_size": "100"}, {}])
def test_the_client_list_uses_a_constant_number_of_queries(org, other_org, query):
    make_clients(org, 5)
    make_clients(other_org, 50)
    few, few_body = list_page_queries(org.id, query)
    many, many_body = list_page_queries(other_org.id, query)
    assert len(few_body["clients"]) == 5
    assert len(many_body["clients"]) == (50 if query else 10)
    assert all(c["secrets"] for c in many_body["clients"])
    # organization, count, the page of clients, their secrets and keys (one prefetch each)
    assert len(few) == len(many) == 5, many


def test_the_list_counts_active_secrets(org):
    make_clients(org, 4)  # clients 1 and 3 hold two secrets
    first = selectors.client_list(org)[1]
    secret = first.secrets.all()[0]
    secret_set_status(actor=SYSTEM, secret=secret, status="INACTIVE")
    counts = [c.active_secret_count for c in selectors.client_list(org)]
    assert counts == [1, 1, 1, 2]


def test_the_next_page_costs_the_same(org):
    make_clients(org, 25)
    first, body = list_page_queries(org.id, {})
    second, next_body = list_page_queries(org.id, {"page_token": body["next_page_token"]})
    assert len(first) == len(second) == 5
    assert {c["client_id"] for c in body["clients"]}.isdisjoint(
        c["client_id"] for c in next_body["clients"]
    )
