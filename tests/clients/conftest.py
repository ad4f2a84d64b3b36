"""The management-API client fixture, shared by the API test modules."""

from tests.clients.test_api import api  # noqa: F401
