"""Compact JSON, in one place: the token endpoint's answers and claims, and the log lines.

orjson writes a token's claims and answer about ten times faster than the standard library's
encoder (a token encodes JSON three times; bench/README.md has the figures). Its output is the
same compact JSON, in UTF-8 rather than with ``\\u`` escapes. Whatever it refuses (a lone
surrogate, an integer beyond 64 bits, a key that is not a string) goes through the standard
encoder, with non-ASCII escaped, so that anything JSON can hold can be written.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_fallback = json.JSONEncoder(separators=(",", ":")).encode


def compact_json(value: Any) -> bytes:
    """``value`` as compact JSON (no spaces), UTF-8 encoded."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _fallback(value).encode("ascii")


def loads(value: str | bytes) -> Any:
    """Parse JSON (orjson; the token path reads a client's three JSON columns per request)."""
    return orjson.loads(value)
