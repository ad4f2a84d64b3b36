"""The worker class fits the application given to gunicorn (gunicorn.conf.py's on_starting).

End to end, with real gunicorn processes: tests/e2e/test_entry_points.py.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import ThreadWorker

from portal.serving.gunicorn_hooks import WorkerMismatch, app_kind, serve_with_the_worker_of_the_app


def gunicorn_server(app_uri: str, worker_class: str = "asgi") -> SimpleNamespace:
    """What the hook sees of gunicorn's arbiter: its configuration, application and log."""
    cfg = Config()
    cfg.set("worker_class", worker_class)
    cfg.set("reuse_port", worker_class == "asgi")
    return SimpleNamespace(
        cfg=cfg,
        app=SimpleNamespace(app_uri=app_uri),
        log=logging.getLogger("test"),
        worker_class=None,
    )


@pytest.mark.parametrize(
    ("app_uri", "kind"),
    [
        ("portal.wsgi", "wsgi"),
        ("portal.wsgi:application", "wsgi"),
        ("examples.deployment_api.wsgi", "wsgi"),
        ("portal.asgi:application", "asgi"),
        ("asgi", "asgi"),
        ("bench.a2wsgi_app:application", None),
        ("myproject.server:app", None),
    ],
)
def test_the_application_path_says_what_it_is_by_djangos_convention(app_uri, kind):
    assert app_kind(app_uri) == kind


def test_a_wsgi_application_gets_the_threaded_worker_instead_of_the_default(monkeypatch):
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    monkeypatch.delenv("GUNICORN_REUSE_PORT", raising=False)
    server = gunicorn_server("portal.wsgi")
    serve_with_the_worker_of_the_app(server, adaptable="asgi")
    assert server.cfg.worker_class_str == "gthread"
    assert server.worker_class is ThreadWorker
    assert server.cfg.threads == 4
    assert server.cfg.reuse_port is False


@pytest.mark.parametrize(
    ("app_uri", "worker_class"),
    [
        ("portal.asgi:application", "asgi"),
        ("portal.wsgi", "gthread"),
        ("portal.wsgi", "sync"),  # -k sync: another WSGI worker, the operator's choice
        ("myproject.server:app", "asgi"),  # the worker checks it (app_fits_worker)
    ],
)
def test_a_fitting_or_unnamed_application_keeps_its_worker(app_uri, worker_class):
    server = gunicorn_server(app_uri, worker_class)
    serve_with_the_worker_of_the_app(server, adaptable="asgi")
    assert server.cfg.worker_class_str == worker_class
    assert server.worker_class is None  # untouched


@pytest.mark.parametrize(
    ("app_uri", "worker_class", "adaptable", "needed"),
    [
        ("portal.asgi:application", "gthread", "asgi", "asgi"),  # -k gthread
        ("portal.wsgi", "asgi", None, "gthread"),  # GUNICORN_WORKER_CLASS=asgi
    ],
)
def test_a_worker_the_operator_chose_that_cannot_call_the_application_stops_gunicorn(
    app_uri, worker_class, adaptable, needed
):
    server = gunicorn_server(app_uri, worker_class)
    with pytest.raises(WorkerMismatch) as stopped:
        serve_with_the_worker_of_the_app(server, adaptable=adaptable)
    assert f"use --worker-class {needed}" in str(stopped.value)
    assert stopped.value.args[0].startswith(f"refusing to start: {app_uri} is ")
