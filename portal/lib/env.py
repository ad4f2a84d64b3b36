"""Reading the environment strictly: a bad value is a configuration error at start-up, never a
surprise at the first request. A variable ``NAME_FILE`` may name a file that holds the value of
``NAME`` (for secrets mounted by an orchestrator)."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env(name: str, default: str | None = None) -> str | None:
    """The value of ``name``, or of the file named by ``name_FILE``, or ``default``."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_name}: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool | None = False) -> bool | None:
    """A boolean: 1/true/yes/on or 0/false/no/off (any case); anything else is an error."""
    value = env(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), not {value!r}")


def env_int(name: str, default: int | None, *, minimum: int | None = None) -> int | None:
    value = env(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}")
    return number


def env_list(name: str, default: list[str] | None) -> list[str] | None:
    value = env(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


_RATE_RE = re.compile(r"^([1-9][0-9]{0,8})/([smh])$")
_PERIODS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Rate:
    """``limit`` events per ``period`` seconds."""

    limit: int
    period: int

    def times(self, factor: int) -> Rate:
        return Rate(self.limit * factor, self.period)


@functools.lru_cache(maxsize=64)
def parse_rate(value: str, name: str = "rate") -> Rate:
    """``"10/m"`` -> Rate(10, 60); anything else is a configuration error."""
    match = _RATE_RE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ImproperlyConfigured(
            f"{name} must look like N/s, N/m or N/h with N a positive integer, not {value!r}"
        )
    return Rate(int(match.group(1)), _PERIODS[match.group(2)])


def env_rate(name: str, default: str) -> str:
    """A rate setting (``N/s``, ``N/m`` or ``N/h``), checked now."""
    value = (env(name) or default).strip()
    parse_rate(value, name)
    return value
