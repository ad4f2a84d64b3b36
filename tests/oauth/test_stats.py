"""Token counts for the dashboard: counted in memory, written at most once a minute."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oauth import stats
from oauth.models import TokenStat
from tests.conftest import Credentials, request_token

pytestmark = pytest.mark.django_db


def test_the_token_endpoint_stays_at_one_query_with_the_counter(client, guide_client):
    assert request_token(client, guide_client).status_code == 200  # warm
    for _ in range(5):
        with CaptureQueriesContext(connection) as queries:
            assert request_token(client, guide_client).status_code == 200
        assert len(queries.captured_queries) == 1, queries.captured_queries
    bad = Credentials(guide_client.client, "wrong")
    assert request_token(client, bad).status_code == 401
    assert not TokenStat.objects.exists()  # nothing written within the minute
    (counts,) = stats.counter.pending().values()
    assert counts == (6, 1)


def test_a_flush_writes_the_pending_counts_once(client, guide_client):
    for _ in range(3):
        request_token(client, guide_client)
    request_token(client, Credentials(guide_client.client, "wrong"))
    assert stats.flush() == 1
    row = TokenStat.objects.get()
    assert (row.issued, row.failed) == (3, 1)
    assert row.hour.minute == 0 and row.hour.second == 0
    assert stats.flush() == 0  # nothing pending: no write
    request_token(client, guide_client)
    stats.flush()
    row.refresh_from_db()
    assert (row.issued, row.failed) == (4, 1)


def test_workers_add_up_into_one_row_per_hour(db):
    first, second = stats.TokenCounter(), stats.TokenCounter()
    for _ in range(10):
        first.record_issued()
    second.record_issued()
    second.record_failed()
    with CaptureQueriesContext(connection) as queries:
        first.record_issued()
        second.record_failed()
    assert queries.captured_queries == []  # counting is in memory
    first.flush()
    second.flush()
    row = TokenStat.objects.get()
    assert (row.issued, row.failed) == (12, 2)


def test_the_first_record_after_the_interval_flushes(db):
    counter = stats.TokenCounter(flush_seconds=0)
    counter.record_issued()
    assert TokenStat.objects.get().issued == 1
    counter.record_failed()
    row = TokenStat.objects.get()
    assert (row.issued, row.failed) == (1, 1)
    assert counter.pending() == {}
