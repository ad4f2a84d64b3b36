"""Every documented or conventional way to start the server works from the project root.

Each entry point runs as a real process with the production settings (DEBUG off, the static
files collected into a STATIC_ROOT of their own, as an operator would), and answers what every
part of the product needs: a token by client credentials, a management API call, a portal page
and one of its static files, an admin page (whose Set-Cookie must reach the client: uvicorn's
HTTP library drops an answer whose header value starts with a space, as Django writes them).

A configuration that cannot work stops the server at start with the reason, instead of
answering 500: a worker class that cannot call the application, a missing static manifest.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.e2e.server import ROOT, ServerDatabase, ServerProcess, server_database

pytestmark = pytest.mark.e2e

Command = Callable[[ServerProcess], list[str]]


def gunicorn(*args: str) -> Command:
    return lambda server: [sys.executable, "-m", "gunicorn", *args, "--bind", server.bind]


def uvicorn(*args: str) -> Command:
    return lambda server: [
        sys.executable,
        "-m",
        "uvicorn",
        *args,
        "--host",
        "127.0.0.1",
        "--port",
        str(server.port),
    ]


# Each entry point, and the worker its log must name (gunicorn) or None (uvicorn).
ENTRY_POINTS: dict[str, tuple[Command, str | None]] = {
    # The documented command: gunicorn.conf.py's defaults (the asgi worker, portal.asgi).
    "gunicorn -c gunicorn.conf.py": (gunicorn("-c", "gunicorn.conf.py", "--workers", "2"), "asgi"),
    # Django's deployment guide; gunicorn reads ./gunicorn.conf.py by itself.
    "gunicorn portal.wsgi": (gunicorn("portal.wsgi", "--workers", "2"), "gthread"),
    "gunicorn portal.asgi:application": (
        gunicorn("portal.asgi:application", "--workers", "2"),
        "asgi",
    ),
    "uvicorn portal.asgi:application --workers 2": (
        uvicorn("portal.asgi:application", "--workers", "2"),
        None,
    ),
}


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Iterator[ServerDatabase]:
    """One migrated and bootstrapped database that every entry point serves in turn."""
    tmp = tmp_path_factory.mktemp("entry-points")
    with server_database(tmp) as database:
        ServerProcess(database).prepare()
        yield database


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_the_entry_point_serves_tokens_the_api_the_portal_and_the_admin(name, database, tmp_path):
    command, worker = ENTRY_POINTS[name]
    server = ServerProcess(database)
    try:
        server.serve(tmp_path, command=command(server))
        if worker:
            assert f"Using worker: {worker}" in server.log_text()

        # A token (client_secret_basic), and a management API call with it.
        management = server.management(f"entry point {name}")
        api = f"{server.url}/api/v1/organizations"
        created = requests.post(
            api, json={"display_name": name}, headers=management.headers, timeout=10
        )
        assert created.status_code == 201, created.text
        listed = requests.get(api, headers=management.headers, timeout=10)
        assert listed.status_code == 200, listed.text
        assert name in [o["display_name"] for o in listed.json()["organizations"]]

        # A portal page, and the stylesheet it links to (hashed name, from the manifest).
        page = requests.get(f"{server.url}/login", timeout=10)
        assert page.status_code == 200, page.text[:500]
        assert "csrftoken=" in page.headers["Set-Cookie"]
        stylesheet = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', page.text)
        assert stylesheet, page.text[:1000]
        css = requests.get(server.url + stylesheet.group(1), timeout=10)
        assert css.status_code == 200
        assert css.headers["Content-Type"].startswith("text/css")
        assert "immutable" in css.headers["Cache-Control"]

        # An admin page, with its cookie.
        admin = requests.get(f"{server.url}/admin/login/", timeout=10)
        assert admin.status_code == 200, admin.text[:500]
        assert admin.headers["Set-Cookie"].startswith("csrftoken=")
        assert 'name="csrfmiddlewaretoken"' in admin.text
    finally:
        server.stop()
    assert "Traceback" not in server.log_text()


def run_until_exit(server: ServerProcess, command: list[str]) -> subprocess.CompletedProcess:
    """Run a server command that must stop by itself (refusing to start)."""
    return subprocess.run(
        command,
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("command", "env", "message"),
    [
        (
            gunicorn("portal.asgi:application", "--worker-class", "gthread"),
            {},
            "portal.asgi:application is an ASGI application and the worker class 'gthread' "
            "cannot serve it; use --worker-class asgi",
        ),
        (
            gunicorn("portal.wsgi"),
            {"GUNICORN_WORKER_CLASS": "asgi"},
            "portal.wsgi is a WSGI application and the worker class 'asgi' cannot serve it; "
            "use --worker-class gthread",
        ),
        (
            # A path that does not say what it is: the worker finds out, and stops the server.
            gunicorn("tests.e2e.app_elsewhere:wsgi_application"),
            {},
            "the asgi worker was given a WSGI application; use --worker-class gthread",
        ),
        (
            gunicorn("tests.e2e.app_elsewhere:asgi_application", "--worker-class", "gthread"),
            {},
            "a WSGI worker was given an ASGI application; use --worker-class asgi",
        ),
    ],
    ids=["asgi-on-gthread", "wsgi-on-asgi", "unnamed-wsgi-on-asgi", "unnamed-asgi-on-gthread"],
)
def test_a_worker_class_that_cannot_call_the_application_stops_the_server(
    database, command, env, message
):
    server = ServerProcess(database, extra_env=env)
    result = run_until_exit(server, command(server))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output


@pytest.mark.parametrize(
    "command",
    [
        gunicorn("-c", "gunicorn.conf.py"),
        gunicorn("portal.wsgi"),
        uvicorn("portal.asgi:application", "--workers", "2"),
    ],
    ids=["gunicorn-asgi", "gunicorn-wsgi", "uvicorn-workers"],
)
def test_without_collectstatic_the_server_refuses_to_start_and_says_why(
    database, tmp_path, command
):
    empty = tmp_path / "static"
    server = ServerProcess(database, extra_env={"STATIC_ROOT": str(empty)})
    result = run_until_exit(server, command(server))
    output = result.stdout + result.stderr
    assert (
        f"refusing to start: the static files manifest {empty}/staticfiles.json is missing: "
        "run `python manage.py collectstatic --noinput`"
    ) in output
    # It stopped by itself (run_until_exit returned): no worker restarted in a loop.
