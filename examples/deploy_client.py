"""Act as the guide's deployment service: get a token once, call the deployment API twice.

Environment: ``TOKEN_URL`` (our token endpoint), ``CLIENT_ID``, ``CLIENT_SECRET``
(the client registered through the management API) and ``API_URL`` (the
example deployment API). Run from the repository root::

    TOKEN_URL=http://127.0.0.1:8000/oauth/token CLIENT_ID=m2morg_… CLIENT_SECRET=test_… \
    API_URL=http://127.0.0.1:8001 python examples/deploy_client.py

Exits non-zero when a call fails.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import requests

# Run as a script from anywhere: make the repository's ``oauth`` package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from m2m_auth_kit.client import ClientCredentials, TokenRequestError


def main() -> int:
    """Deploy once, list deployments, print both answers."""
    try:
        token_url, client_id, client_secret, api_url = (
            os.environ[name] for name in ("TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET", "API_URL")
        )
    except KeyError as missing:
        print(f"set {missing.args[0]} (and TOKEN_URL, CLIENT_ID, CLIENT_SECRET, API_URL)")
        return 2

    # One ClientCredentials per process: it keeps the token until shortly before
    # it expires, so both calls below (and any others) share a single token request.
    credentials = ClientCredentials(token_url, client_id, client_secret)
    session = requests.Session()
    session.auth = credentials
    api_url = api_url.rstrip("/")

    try:
        created = session.post(
            f"{api_url}/deployments",
            json={
                "application": "inventory-service",
                "version": "1.4.2",
                "environment": "production_us",
            },
            timeout=10,
        )
        print(f"POST /deployments -> {created.status_code}")
        print(json.dumps(created.json(), indent=2))
        listed = session.get(f"{api_url}/deployments", timeout=10)
        print(f"GET /deployments -> {listed.status_code}")
        print(json.dumps(listed.json(), indent=2))
    except TokenRequestError as exc:
        print(f"the token endpoint refused: {exc}")
        return 1
    return 0 if created.status_code == 201 and listed.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
