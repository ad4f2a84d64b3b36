"""The management API's webhook endpoints: shapes, the secret shown once, tenancy, errors."""

from __future__ import annotations

import pytest

from clients.models import WebhookEndpoint
from clients.webhooks import decrypt_secret
from tests.api.test_views import assert_error
from tests.conftest import run_worker
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/m2m"


def test_create_answers_the_endpoint_and_its_secret_once(api, org):
    response = api.call(
        "post",
        f"/organizations/{org.id}/webhook-endpoints",
        {"url": URL, "event_types": ["client.created"], "description": "CRM", "enabled": True},
    )
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert list(body) == ["webhook_endpoint", "signing_secret"]
    endpoint = body["webhook_endpoint"]
    assert endpoint["id"].startswith("whe_")
    assert endpoint["organization_id"] == org.id
    assert endpoint["event_types"] == ["client.created"]
    assert body["signing_secret"].startswith("whsec_")
    stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert decrypt_secret(stored.secret_encrypted) == body["signing_secret"]
    # Never again: not in a read, a list or a change.
    one = f"/organizations/{org.id}/webhook-endpoints/{endpoint['id']}"
    for response in (
        api.call("get", one),
        api.call("get", f"/organizations/{org.id}/webhook-endpoints"),
        api.call("patch", one, {"description": "CRM tickets"}),
    ):
        assert response.status_code == 200
        assert "whsec_" not in response.content.decode()


def test_the_provider_endpoint_has_no_organization(api):
    response = api.call("post", "/webhook-endpoints", {"url": URL})
    assert response.status_code == 201
    assert response.json()["webhook_endpoint"]["organization_id"] is None
    assert response.json()["webhook_endpoint"]["event_types"] == []


def test_rotation_answers_a_new_secret(api, org):
    made = api.call("post", f"/organizations/{org.id}/webhook-endpoints", {"url": URL}).json()
    one = f"/organizations/{org.id}/webhook-endpoints/{made['webhook_endpoint']['id']}"
    response = api.call("post", f"{one}/secrets:rotate")
    assert response.status_code == 200
    assert list(response.json()) == ["signing_secret"]
    assert response.json()["signing_secret"] != made["signing_secret"]


def test_another_organizations_endpoint_is_404(api, org, other_org):
    made = api.call("post", f"/organizations/{other_org.id}/webhook-endpoints", {"url": URL}).json()
    endpoint_id = made["webhook_endpoint"]["id"]
    mine = f"/organizations/{org.id}/webhook-endpoints/{endpoint_id}"
    for method, path in (
        ("get", mine),
        ("patch", mine),
        ("delete", mine),
        ("post", f"{mine}/secrets:rotate"),
        ("post", f"{mine}:test"),
        ("get", f"{mine}/deliveries"),
        ("get", f"/webhook-endpoints/{endpoint_id}"),  # not the provider's either
    ):
        body = {"description": "x"} if method == "patch" else None
        assert_error(api.call(method, path, body), 404, 5)
    assert (
        api.call("get", f"/organizations/{org.id}/webhook-endpoints").json()["webhook_endpoints"]
        == []
    )
    assert_error(api.call("get", "/organizations/org_0/webhook-endpoints"), 404, 5)


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://hooks.example.com/"},
        {"url": "https://127.0.0.1/"},
        {"url": "https://10.1.2.3/"},
        {"url": URL, "event_types": ["client.exploded"]},
        {"url": URL, "event_types": "client.created"},
        {"url": URL, "enabled": "yes"},
        {"url": URL, "secret": "whsec_mine"},
        {},
    ],
)
def test_bad_input_is_a_400(api, org, body):
    response = api.call("post", f"/organizations/{org.id}/webhook-endpoints", body)
    assert_error(response, 400, 3)
    assert not WebhookEndpoint.objects.exists()


def test_deliveries_list_with_paging(api, org, settings):
    settings.OUTBOUND_ALLOW_INSECURE = True
    receiver = Receiver().start()
    try:
        made = api.call(
            "post", f"/organizations/{org.id}/webhook-endpoints", {"url": receiver.url}
        ).json()
        receiver.secret = made["signing_secret"]
        one = f"/organizations/{org.id}/webhook-endpoints/{made['webhook_endpoint']['id']}"
        for _ in range(3):
            assert api.call("post", f"{one}:test").status_code == 202
        run_worker()
        page = api.call("get", f"{one}/deliveries?page_size=2").json()
        assert len(page["deliveries"]) == 2 and page["next_page_token"]
        delivery = page["deliveries"][0]
        assert set(delivery) == {
            "id",
            "event_id",
            "event_type",
            "attempt",
            "status",
            "response_code",
            "duration_ms",
            "create_time",
        }
        assert (delivery["event_type"], delivery["attempt"], delivery["status"]) == (
            "webhook.test",
            1,
            "succeeded",
        )
        assert delivery["response_code"] == 200 and delivery["event_id"].startswith("msg_")
        rest = api.call("get", f"{one}/deliveries?page_token={page['next_page_token']}").json()
        # The 3 tests and the endpoint's own webhook_endpoint.created (it wants every type).
        assert len(rest["deliveries"]) == 2 and rest["next_page_token"] == ""
        assert sorted(receiver.types()) == ["webhook.test"] * 3 + ["webhook_endpoint.created"]
    finally:
        receiver.stop()
