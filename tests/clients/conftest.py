"""The management-API client fixture, shared by the API test modules."""

import pytest
from django.db import connection

from tests.api.test_views import api  # noqa: F401


def skip_unless_shared_database() -> None:
    """Threads of a test need a database they all see: not an in-memory SQLite database."""
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(
        "file:memorydb"
    ):
        pytest.skip("an in-memory SQLite database is not shared between threads")
