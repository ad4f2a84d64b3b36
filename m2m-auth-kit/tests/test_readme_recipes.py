"""The README's Flask and FastAPI recipes, run exactly as printed, with our server's tokens.

Each recipe is the ```` ```python ```` block under its README heading, compiled and executed as
it stands; only its module-level ``verifier`` (which trusts ``https://auth.example.com``) is then
replaced by one trusting our server, which the recipe's functions look up when called. So an
edit of the README that breaks a recipe fails here. Flask and FastAPI are not dependencies of the
kit: the virtualenv that runs this suite installs them (``tests/kit/test_package.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from m2m_auth_kit import ClientCredentials, TokenVerifier

from .conftest import AUDIENCE, GUIDE_CLIENT

# The package's README, in the repository and beside the copy of these tests alike.
README = Path(__file__).resolve().parents[1] / "README.md"
CLOSED_PORT = "http://127.0.0.1:9"  # discard: nothing listens, the connection is refused


def recipe(heading: str) -> str:
    """The first Python block after ``### heading`` in the README."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n### {heading}\n", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any


@dataclass
class Recipe:
    """A recipe's app, run in process: ``post(headers)`` calls its ``POST /deployments``."""

    namespace: dict[str, Any]
    post: Callable[[dict[str, str]], Answer]

    def trust(self, verifier: TokenVerifier) -> None:
        self.namespace["verifier"] = verifier


def flask_recipe() -> Recipe:
    pytest.importorskip("flask")
    namespace: dict[str, Any] = {"__name__": "readme_flask"}
    exec(compile(recipe("Flask"), f"{README} (Flask)", "exec"), namespace)  # noqa: S102
    client = namespace["app"].test_client()

    def post(headers: dict[str, str]) -> Answer:
        response = client.post("/deployments", headers=headers)
        return Answer(response.status_code, response.headers, response.get_json())

    return Recipe(namespace, post)


def fastapi_recipe() -> Recipe:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    namespace: dict[str, Any] = {"__name__": "readme_fastapi"}
    exec(compile(recipe("FastAPI"), f"{README} (FastAPI)", "exec"), namespace)  # noqa: S102
    client = TestClient(namespace["app"])

    def post(headers: dict[str, str]) -> Answer:
        response = client.post("/deployments", headers=headers)
        return Answer(response.status_code, response.headers, response.json())

    return Recipe(namespace, post)


@pytest.fixture(params=[flask_recipe, fastapi_recipe], ids=["flask", "fastapi"])
def app(request: pytest.FixtureRequest, server: Any) -> Recipe:
    made: Recipe = request.param()
    assert isinstance(made.namespace["verifier"], TokenVerifier)  # the recipe's own, replaced:
    made.trust(TokenVerifier(server.url, audience=AUDIENCE))
    return made


@pytest.fixture
def created(mgmt: Any, org: Any) -> Any:
    return mgmt.clients.create(org.id, **GUIDE_CLIENT)


def token_for(server: Any, created: Any, scope: str | None = None) -> str:
    credentials = ClientCredentials(
        server.token_url, created.client.client_id, created.plain_secret, scope=scope
    )
    return credentials.token()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_with_the_scope_reaches_the_view(app, server, created):
    answer = app.post(bearer(token_for(server, created)))

    assert answer.status == 200, answer.body
    assert answer.body == {"client": created.client.client_id}


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Bearer "])
def test_no_bearer_token_is_401_with_a_bare_challenge(app, authorization):
    answer = app.post({"Authorization": authorization} if authorization is not None else {})

    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_tampered_token_is_401_invalid_token(app, server, created):
    header, payload, signature = token_for(server, created).split(".")
    forged = f"{header}.{payload}.{'A' * len(signature)}"

    answer = app.post(bearer(forged))

    assert answer.status == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert forged not in challenge


def test_a_token_for_another_audience_is_401_invalid_token(app, server, created):
    app.trust(TokenVerifier(server.url, audience="billing.acmecorp.com"))

    answer = app.post(bearer(token_for(server, created)))

    assert answer.status == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


def test_a_token_without_the_scope_is_403_insufficient_scope(app, server, created):
    answer = app.post(bearer(token_for(server, created, scope="read:deployments")))

    assert answer.status == 403
    assert answer.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="deploy:applications"'
    )


def test_unreachable_keys_are_503_with_retry_after(app, server, created):
    app.trust(TokenVerifier(server.url, audience=AUDIENCE, jwks_url=f"{CLOSED_PORT}/jwks"))

    answer = app.post(bearer(token_for(server, created)))

    assert answer.status == 503
    assert int(answer.headers["Retry-After"]) > 0
    assert "WWW-Authenticate" not in answer.headers
