"""ManagementClient's handling of answers our server does not give (the tiny server plays a
broken or foreign one); the walkthrough against our real server is in m2m-auth-kit/tests."""

import pytest

from m2m_auth_kit.management import ManagementAPIError, ManagementClient
from tests.kit.server import CLIENT_ID, CLIENT_SECRET


@pytest.fixture
def mgmt(kit):
    return ManagementClient(kit.issuer, CLIENT_ID, CLIENT_SECRET, token_url=kit.url("/token"))


def test_an_answer_not_in_the_apis_format_keeps_its_status(kit, mgmt):
    kit.api_answer = (502, b"<html>Bad Gateway</html>", {})

    with pytest.raises(ManagementAPIError) as caught:
        mgmt.organizations.get("org_1")

    error = caught.value
    assert (error.status_code, error.code, error.error_code) == (502, 2, "UNKNOWN")
    assert error.message == "HTTP 502, not an error of the management API"
    assert error.field_violations == []


def test_retry_after_is_read_from_a_429(kit, mgmt):
    body = {
        "code": 8,
        "message": "too many requests; retry after 7 s",
        "details": [{"error_code": "RESOURCE_EXHAUSTED"}],
    }
    kit.api_answer = (429, body, {"Retry-After": "7"})

    with pytest.raises(ManagementAPIError) as caught:
        mgmt.organizations.get("org_1")

    assert (caught.value.code, caught.value.error_code) == (8, "RESOURCE_EXHAUSTED")
    assert caught.value.retry_after == 7


def test_a_success_that_is_not_a_json_object_is_an_error(kit, mgmt):
    kit.api_answer = (200, ["not", "an", "object"], {})

    with pytest.raises(ManagementAPIError, match="not a JSON object") as caught:
        mgmt.organizations.get("org_1")

    assert caught.value.status_code == 200


def test_a_second_401_is_the_apis_error(kit, mgmt):
    body = {"code": 16, "message": "bad token", "details": [{"error_code": "UNAUTHENTICATED"}]}
    kit.api_answer = (401, body, {})

    with pytest.raises(ManagementAPIError) as caught:
        mgmt.organizations.get("org_1")

    assert (caught.value.status_code, caught.value.code) == (401, 16)
    assert kit.count("/token") == 2  # the first token, and one new one for the retry


def test_ids_are_sent_as_one_path_segment(kit, mgmt):
    kit.api_answer = (404, {"error": "not_found"}, {})

    with pytest.raises(ManagementAPIError):
        mgmt.organizations.get("../../oauth/token")

    assert kit.count("/api/v1/organizations/..%2F..%2Foauth%2Ftoken") == 1
