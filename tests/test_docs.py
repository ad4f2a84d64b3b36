"""The documentation is true: the configuration reference names every environment variable the
settings read and lists every reserved claim name; the README's paths, make targets and commands
exist; the distribution files (LICENSE, SECURITY.md, CHANGELOG.md, the lock files) are there and
agree with pyproject.toml."""

from __future__ import annotations

import re
import tomllib
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


def test_the_distribution_files_are_there():
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in license_text
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pyproject["license"] == "Apache-2.0"
    security = (ROOT / "SECURITY.md").read_text()
    for section in ("## Supported versions", "## Reporting a vulnerability", "## Scope"):
        assert section in security
    for lock in ("requirements/dev.lock", "requirements/prod.lock"):
        text = (ROOT / lock).read_text()
        assert "--hash=sha256:" in text
        # Every pinned requirement carries its hashes (pip install --require-hashes needs them).
        pins = re.findall(r"^([A-Za-z0-9_.-]+)==\S+ \\$", text, flags=re.MULTILINE)
        assert len(pins) == text.count("==") > 10, lock


def test_the_version_is_the_changelogs_latest_release():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", changelog, re.M)
    assert releases, "no release heading in CHANGELOG.md"
    assert releases[0][0] == version
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{version}]")


def test_the_locks_pin_what_pyproject_asks_for():
    """A dependency added to pyproject.toml without `make lock` would be missing from the lock
    (and make install would then fail on a fresh machine)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for lock, requirements in (
        ("requirements/prod.lock", project["dependencies"]),
        (
            "requirements/dev.lock",
            project["dependencies"] + project["optional-dependencies"]["dev"],
        ),
    ):
        pinned = {
            canonical(name)
            for name in re.findall(r"^([A-Za-z0-9_.-]+)==", (ROOT / lock).read_text(), re.M)
        }
        wanted = {canonical(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in requirements}
        assert wanted - pinned == set(), lock


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_paths_and_commands_in_the_readme_exist():
    readme = (ROOT / "README.md").read_text()
    roots = "portal|oauth|clients|tests|bench|examples|m2m_auth_kit|requirements"
    paths = set(re.findall(rf"(?<![\w/.-])((?:{roots})/[\w./-]*[\w/])", readme))
    assert {"requirements/dev.lock", "tests/e2e/test_entry_points.py"} <= paths
    assert [p for p in sorted(paths) if not (ROOT / p).exists()] == []
    for name in ("LICENSE", "SECURITY.md", "CHANGELOG.md", "gunicorn.conf.py"):
        assert name in readme and (ROOT / name).exists(), name
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"`make ([a-z][\w-]*)", readme)) | set(
        re.findall(r"^make ([a-z][\w-]*)", readme, re.M)
    )
    assert {"install", "lock", "lock-upgrade", "test"} <= targets
    assert [t for t in sorted(targets) if not re.search(rf"^{t}:", makefile, re.M)] == []
    commands = set(re.findall(r"manage\.py ([a-z_]+)", readme))
    django_commands = {"check", "collectstatic", "createsuperuser", "migrate", "runserver"}
    ours = {p.stem for p in ROOT.glob("*/management/commands/*.py") if p.stem != "__init__"}
    assert commands - django_commands - ours == set()
