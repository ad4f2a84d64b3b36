"""The configuration reference names every environment variable the settings read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_environment_variable_is_in_the_configuration_reference():
    settings_source = (ROOT / "portal" / "settings.py").read_text()
    read = set(re.findall(r'\benv(?:_bool|_int|_list|_rate)?\(\s*"([A-Z0-9_]+)"', settings_source))
    assert {"SECRET_KEY", "DATABASE_URL", "TRUSTED_PROXIES"} <= read
    documented = ""
    for name in ("README.md", "docs/operations.md"):
        if (ROOT / name).exists():
            documented += (ROOT / name).read_text()
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", documented, flags=re.MULTILINE))
    assert read - rows == set()
