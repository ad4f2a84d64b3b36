"""The portal's catalog of APIs, and the guide's client as the register form sends it."""

from __future__ import annotations

import pytest

from clients.services import api_resource_create
from tests.conftest import GUIDE_CLIENT, SYSTEM


@pytest.fixture
def catalog(db):
    """The guide's API, as ``bootstrap --demo`` seeds it, and a second one."""
    deployment = api_resource_create(
        actor=SYSTEM,
        audience="deployment-api.acmecorp.com",
        name="Deployment API",
        description="Deploy applications",
        scopes=[
            ("deploy:applications", "Deploy applications"),
            ("read:deployments", "Read deployments"),
        ],
    )
    billing = api_resource_create(
        actor=SYSTEM,
        audience="billing-api.acmecorp.com",
        name="Billing API",
        scopes=[("read:invoices", "Read invoices")],
    )
    return {"deployment": deployment, "billing": billing}


def guide_form(**overrides) -> list[tuple[str, str]]:
    """The guide's client as the register form sends it (repeated names as pairs)."""
    data = {
        "name": GUIDE_CLIENT["name"],
        "description": GUIDE_CLIENT["description"],
        "expiry": "3600",
        **overrides,
    }
    pairs = [(k, v) for k, v in data.items() if not isinstance(v, list)]
    pairs += [("audience", a) for a in overrides.get("audience", GUIDE_CLIENT["audience"])]
    pairs += [("scopes", s) for s in overrides.get("scopes", GUIDE_CLIENT["scopes"])]
    for claim in GUIDE_CLIENT["custom_claims"]:
        pairs += [("claim_key", claim["key"]), ("claim_value", claim["value"])]
    return pairs
