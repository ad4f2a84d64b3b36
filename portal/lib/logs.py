"""Structured logs: a JSON formatter, the request id, and per-request log context.

Views tell the access log what they learned (``client_id``, ``organization_id``,
``outcome``) with :func:`log_context`; the access-log middleware writes one line
per request with those fields. Nothing here ever reads a request body, a query
string or an ``Authorization`` header, and the formatter drops any field whose
name says it holds a credential, as a second line of defence.
"""

from __future__ import annotations

import contextvars
import logging
import random
import re
import time
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest

from portal.lib.encoding import compact_json

# The request being served by this thread (or task), so every log line can carry its id.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only when it is short and plain, so it cannot forge log lines or
# smuggle data; otherwise we make our own.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=@/-]{1,128}")

# Field names that must never reach a log line, whatever a caller passes in ``extra``.
SENSITIVE_FIELDS = frozenset(
    {
        "access_token",
        "authorization",
        "client_secret",
        "password",
        "secret",
        "token",
        "refresh_token",
        "body",
        "form",
        "post",
        "cookie",
        "cookies",
        "request",  # Django's HttpRequest rides along on django.request records
    }
)

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def new_request_id() -> str:
    """32 hex digits, as a UUID4's. A request id is a label, not a secret: Python's generator
    (reseeded in every forked worker) spares a system call per request."""
    return f"{random.getrandbits(128):032x}"


def request_id_from(value: str | None) -> str:
    """The caller's ``X-Request-ID`` when sane, a fresh id otherwise."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


def log_context(request: HttpRequest, **fields: Any) -> None:
    """Add fields (``client_id``, ``organization_id``, ``outcome``…) to this request's access line.

    Never pass a secret or a token: the formatter drops fields with such names, but a value
    under an innocent name would be logged.
    """
    context = getattr(request, "log_context", None)
    if context is None:
        context = {}
        request.log_context = context  # type: ignore[attr-defined]
    context.update({name: value for name, value in fields.items() if value is not None})


def record_extra(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` made safe as a logging ``extra``: no reserved record names, no credentials."""
    return {
        name: value
        for name, value in fields.items()
        if name not in _RECORD_ATTRS and name.lower() not in SENSITIVE_FIELDS
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _encode_line(line: dict[str, Any]) -> str:
    return compact_json(line).decode("utf-8")


def _json_line(
    created: float, level: str, logger: str, message: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """What JsonFormatter writes, as a dict: the record's own fields, then the safe extras."""
    line: dict[str, Any] = {
        "time": _timestamp(created),
        "level": level,
        "logger": logger,
        "message": message,
    }
    request_id = fields.get("request_id") or request_id_var.get()
    if request_id:
        line["request_id"] = request_id
    for name, value in fields.items():
        if name in _RECORD_ATTRS or name in line or name.lower() in SENSITIVE_FIELDS:
            continue
        line[name] = value if type(value) in _PLAIN else _jsonable(value)
    return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = _json_line(
            record.created, record.levelname, record.name, record.getMessage(), record.__dict__
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _encode_line(line)


_PLAIN = frozenset({str, int, float, bool, type(None)})
# The last whole second formatted, and its text: one tuple, read and replaced whole, so that
# threads logging across a second's boundary never pair one second with another's text.
_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """``created`` as ISO 8601 in UTC with milliseconds (what ``isoformat`` gives), the
    date and time formatted once per second."""
    global _second
    second = int(created)
    cached = _second
    if cached[0] != second:
        cached = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        _second = cached
    return f"{cached[1]}.{int((created - second) * 1000):03d}+00:00"


class TextFormatter(logging.Formatter):
    """Plain lines for development, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        return f"{text} [{request_id}]" if request_id else text


def plain_json_stream(logger: logging.Logger, level: int) -> logging.StreamHandler | None:
    """The one handler a record of ``level`` on ``logger`` would reach, when that is a plain
    StreamHandler with our JsonFormatter and nothing filters on the way (the production
    configuration); None otherwise, or when such a record would not be logged at all."""
    if not logger.isEnabledFor(level):
        return None
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        found += current.handlers
        if not current.propagate:
            break
        current = current.parent
    if len(found) != 1:
        return None
    handler = found[0]
    if (
        type(handler) is not logging.StreamHandler
        or type(handler.formatter) is not JsonFormatter
        or handler.filters
        or level < handler.level
    ):
        return None
    return handler


def write_json_line(
    handler: logging.StreamHandler, logger: str, message: str, fields: dict[str, Any]
) -> bool:
    """Write, at INFO, the very line JsonFormatter would make of a record with ``message`` and
    ``fields`` as its extras, without building the record (a LogRecord, the search for its
    caller and the formatter's walk over it cost a token request more than its database query).
    False when the write failed: log it the ordinary way, whose handler reports the error."""
    text = _encode_line(_json_line(time.time(), "INFO", logger, message, fields))
    handler.acquire()
    try:
        handler.stream.write(text + handler.terminator)
        handler.flush()
    except Exception:
        return False
    finally:
        handler.release()
    return True
