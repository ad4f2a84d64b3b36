"""portal.lib.encoding: the compact JSON of the token path and the log lines."""

from __future__ import annotations

import json

import pytest

from portal.lib.encoding import compact_json, loads


def test_compact_json_is_compact_utf8_in_key_order() -> None:
    value = {"b": 1, "a": ["x", "é"], "n": None, "t": True, "f": 0.25}
    out = compact_json(value)
    assert out == '{"b":1,"a":["x","é"],"n":null,"t":true,"f":0.25}'.encode()
    assert json.loads(out) == value


@pytest.mark.parametrize(
    "value",
    [
        {"claim": "lone \udc80 surrogate"},  # orjson refuses what is not valid UTF-8
        {"big": 2**70},  # beyond 64 bits
        {1: "integer key"},  # not a string key
    ],
)
def test_what_orjson_refuses_goes_through_the_standard_encoder(value: dict) -> None:
    out = compact_json(value)
    # The standard library's compact form, non-ASCII escaped: always valid to send.
    assert out == json.dumps(value, separators=(",", ":")).encode("ascii")


def test_what_neither_encoder_can_write_still_raises() -> None:
    with pytest.raises(TypeError):
        compact_json({"object": object()})


def test_loads_reads_text_and_bytes() -> None:
    assert loads('["a", "b"]') == ["a", "b"]
    assert loads(b'{"k":"v"}') == {"k": "v"}
    with pytest.raises(ValueError):
        loads("{not json")
