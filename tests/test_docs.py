"""The README stays true: every environment variable the settings read, every reserved claim."""

from __future__ import annotations

import re
from pathlib import Path

from clients.models import RESERVED_CLAIMS

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


def test_the_readme_lists_every_reserved_claim_name():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Reserved claim names", 1)[1].split("\n### ", 1)[0]
    listed = set(re.findall(r"`([A-Za-z0-9_]+)`", section.split("\n\n")[-1]))
    assert listed == RESERVED_CLAIMS
