"""portal.lib.logs: one JSON line per record, never a credential field, and the access line
written straight to the stream when production's configuration allows it; the log format and the
operations knobs the settings read.

The request id and the access line of each request: tests/serving/test_middleware.py.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from django.conf import settings

from portal.lib.logs import JsonFormatter, plain_json_stream, record_extra, write_json_line
from tests.serving.helpers import captured_json


def test_the_formatter_drops_credential_fields_whatever_the_caller_passes():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    for name in ("client_secret", "Authorization", "access_token", "password", "request"):
        setattr(record, name, "SENSITIVE")
    record.client_id = "m2morg_1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world" and line["client_id"] == "m2morg_1"
    assert "SENSITIVE" not in json.dumps(line)


def test_an_exception_is_one_json_line_with_its_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["exception"]


def test_json_is_the_format_when_debug_is_off():
    assert settings.DEBUG is False
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "json"
    # Django's own request loggers cannot add lines with query strings or repeats.
    assert settings.LOGGING["loggers"]["django.server"]["handlers"] == ["null"]
    assert settings.LOGGING["loggers"]["django.request"]["level"] == "ERROR"


def _settings_value(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    code = f"import portal.settings as s; print({expression})"
    base = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "x" * 40}
    return subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "json"), ({"DEBUG": "true"}, "text"), ({"DEBUG": "true", "LOG_FORMAT": "JSON"}, "json")],
)
def test_log_format_follows_debug_unless_set(env, expected):
    result = _settings_value(env, "s.LOG_FORMAT")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    "env",
    [
        {"LOG_FORMAT": "xml"},
        {"METRICS_BEARER_TOKEN": "short"},
        {"TRUSTED_PROXIES": "10.0.0.0/8,not-an-ip"},
    ],
)
def test_bad_operations_settings_stop_start_up(env):
    result = _settings_value(env, "1")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


# --- The access line written directly (the production configuration) --------------------------


@pytest.fixture
def json_stream():
    """A logger set up as production sets up the root logger: one StreamHandler, JSON. (Each test
    then drops the capturing handlers pytest adds to a logger that does not propagate.)"""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("m2m.tests.direct-access-line")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, handler, stream
    finally:
        logger.removeHandler(handler)


def test_the_direct_access_line_is_the_line_logging_would_write(json_stream):
    logger, handler, stream = json_stream
    logger.handlers = [handler]
    fields = {
        "request_id": "abc",
        "method": "POST",
        "path": "/oauth/token",
        "status": 200,
        "duration_ms": 1.25,
        "client_ip": None,
        "outcome": "token_issued",
        "scopes": ("a", "b"),
        "client_secret": "must never appear",
        "module": "a reserved record attribute",
    }
    assert plain_json_stream(logger, logging.INFO) is handler
    assert write_json_line(handler, logger.name, "POST /oauth/token 200 1.25ms", fields)
    logger.info("%s %s %s %sms", "POST", "/oauth/token", 200, 1.25, extra=record_extra(fields))
    direct, logged = (json.loads(line) for line in stream.getvalue().splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", direct.pop("time"))
    logged.pop("time")
    assert list(direct.items()) == list(logged.items())  # the same fields, in the same order
    assert "client_secret" not in direct and direct["scopes"] == ["a", "b"]


def test_the_direct_access_line_gives_way_to_any_other_configuration(json_stream):
    logger, handler, _stream = json_stream
    logger.handlers = [handler]
    assert plain_json_stream(logger, logging.DEBUG) is None  # not enabled at that level
    handler.setFormatter(logging.Formatter())
    assert plain_json_stream(logger, logging.INFO) is None
    handler.setFormatter(JsonFormatter())
    handler.addFilter(lambda record: True)
    assert plain_json_stream(logger, logging.INFO) is None
    handler.filters.clear()
    with captured_json(logger.name):  # a second handler
        assert plain_json_stream(logger, logging.INFO) is None
    assert plain_json_stream(logger, logging.INFO) is handler


def test_a_failed_direct_write_falls_back_to_logging(json_stream):
    logger, handler, stream = json_stream
    stream.close()
    assert not write_json_line(handler, logger.name, "x", {})


@pytest.mark.parametrize("created", [1700000000.0, 1700000000.9994, 1700000001.0005, 0.5])
def test_the_time_field_is_what_isoformat_gives(created):
    line = json.loads(JsonFormatter().format(logging.makeLogRecord({"created": created})))
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert line["time"] == expected
