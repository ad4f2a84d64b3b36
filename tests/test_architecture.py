"""The import rules of the README's Architecture section hold, and they are not decoration: a
forbidden import breaks them. import-linter reads its contracts from pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where each root package's source lives; the kit is a distribution of its own (m2m-auth-kit/).
PACKAGES = {
    "portal": ROOT / "portal",
    "clients": ROOT / "clients",
    "oauth": ROOT / "oauth",
    "m2m_auth_kit": ROOT / "m2m-auth-kit" / "src" / "m2m_auth_kit",
}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """A copy of the code and its contracts, to break on purpose."""
    copy = tmp_path_factory.mktemp("tree")
    for package, source in PACKAGES.items():
        shutil.copytree(source, copy / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", copy)
    return copy


def test_the_import_rules_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


@pytest.mark.parametrize(
    ("module", "forbidden", "contract"),
    [
        ("clients/selectors.py", "from oauth import keys", "Layers"),
        ("oauth/views.py", "from portal.ui import forms", "Layers"),
        ("portal/ui/forms.py", "from portal.api import serializers", "Layers"),
        ("clients/models.py", "from portal.serving import headers", "Layers"),
        ("m2m_auth_kit/verify.py", "from portal.lib import encoding", "The kit imports nothing"),
        ("portal/settings.py", "from oauth import keys", "The settings import only"),
        ("oauth/token/request.py", "from oauth import views", "The token hot path"),
    ],
)
def test_a_forbidden_import_breaks_them(tree_copy: Path, module: str, forbidden: str, contract):
    path = tree_copy / module
    original = path.read_text()
    path.write_text(f"{original}\n{forbidden}  # noqa\n")
    try:
        done = lint_imports(tree_copy)
    finally:
        path.write_text(original)
    assert done.returncode != 0, done.stdout
    broken = [line for line in done.stdout.splitlines() if " BROKEN" in line]
    assert len(broken) == 1 and broken[0].startswith(contract), done.stdout
