"""The management-API client fixture, shared by the API test modules."""

from tests.api.test_views import api  # noqa: F401
