"""The kit as its users get it: the built wheel, in a fresh virtualenv without Django.

One wheel and one virtualenv per test session (building them is the slow part). The wheel is
built from a copy of ``m2m-auth-kit/``, so the build leaves nothing in the tree. The package's
own suite (``m2m-auth-kit/tests``) then runs in that virtualenv against our server under
gunicorn; that virtualenv also has Flask and FastAPI, for the README's recipes. The guards, which
need Django and DRF, are tested in this suite's environment (``tests/kit/test_guards.py``) and,
with the same tests, in a second virtualenv holding the wheel and Django 4.2, the oldest Django
the kit supports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.e2e.server import ROOT, child_env, running_server

# One worker builds the wheel and the virtualenv once for all of these (pyproject: loadgroup).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("kit-package")]

KIT = ROOT / "m2m-auth-kit"
SOURCE = KIT / "src" / "m2m_auth_kit"
# What `pip install m2m-auth-kit` may bring: PyJWT[crypto] and what cryptography needs.
BARE_INSTALL = {"m2m-auth-kit", "pyjwt", "cryptography", "cffi", "pycparser"}


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, timeout=600, **kwargs
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("kit-wheel")
    source = tmp / "m2m-auth-kit"
    shutil.copytree(
        KIT, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    )
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp, source)
    [built] = tmp.glob("m2m_auth_kit-0.1.0-py3-none-any.whl")
    return built


@pytest.fixture(scope="session")
def venv(tmp_path_factory, wheel) -> Path:
    """A virtualenv holding the bare wheel (extras come later, in ``test_venv``)."""
    path = tmp_path_factory.mktemp("kit-venv") / "venv"
    run(sys.executable, "-m", "venv", path)
    run(path / "bin" / "python", "-m", "pip", "install", "--quiet", wheel)
    return path


@pytest.fixture(scope="session")
def bare_packages(venv) -> set[str]:
    """What the bare install brought, read before anything else is installed."""
    listed = run(venv / "bin" / "python", "-m", "pip", "list", "--format", "json").stdout
    return {item["name"].lower() for item in json.loads(listed)} - {"pip", "setuptools"}


@pytest.fixture(scope="session")
def test_venv(venv, wheel, bare_packages) -> Path:
    """The same virtualenv with the requests and httpx extras, pytest, and Flask and FastAPI
    for the README's recipes (FastAPI's TestClient uses httpx); still no Django."""
    python = venv / "bin" / "python"
    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        f"{wheel}[requests,httpx]",
        "pytest",
        "flask",
        "fastapi",
    )
    return venv


@pytest.fixture(scope="session")
def django42_venv(tmp_path_factory, wheel) -> Path:
    """A second virtualenv: the wheel with its drf extra on Django 4.2, and pytest-django."""
    path = tmp_path_factory.mktemp("kit-django42") / "venv"
    run(sys.executable, "-m", "venv", path)
    run(
        path / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        f"{wheel}[drf]",
        "Django>=4.2,<4.3",
        "pytest",
        "pytest-django",
    )
    return path


def test_the_wheel_holds_every_module_and_the_typing_marker(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"m2m_auth_kit/{p.name}" for p in SOURCE.glob("*.py")} | {"m2m_auth_kit/py.typed"}

    assert expected <= names
    assert not {n for n in names if n.startswith(("tests/", "m2m_auth_kit/tests"))}
    metadata = zipfile.ZipFile(wheel).read("m2m_auth_kit-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: PyJWT[crypto]" in metadata
    for extra in ("django", "drf", "requests", "httpx"):
        assert f"Provides-Extra: {extra}" in metadata


def test_a_bare_install_pulls_only_pyjwt_and_cryptography(bare_packages):
    assert {"m2m-auth-kit", "pyjwt", "cryptography"} <= bare_packages <= BARE_INSTALL


def test_every_module_imports_from_the_installed_wheel(venv, bare_packages):
    modules = sorted(f"m2m_auth_kit.{p.stem}" for p in SOURCE.glob("*.py") if p.stem != "__init__")
    framework_free = [m for m in modules if m not in FRAMEWORK_MODULES]
    code = (
        "import importlib, sys\n"
        f"for name in {['m2m_auth_kit', *framework_free]!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(venv)!r}), module.__file__\n"
        "for name in ('django', 'rest_framework', 'requests', 'httpx'):\n"
        "    assert name not in sys.modules, name\n"
    )
    run(venv / "bin" / "python", "-c", code, cwd=venv)

    # The Django and DRF guards, with this suite's Django and DRF: still the wheel's code.
    code = (
        "import django.conf, importlib\n"
        "django.conf.settings.configure()\n"
        f"for name in {sorted(FRAMEWORK_MODULES)!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(venv)!r}), module.__file__\n"
    )
    site_packages = sysconfig.get_paths()["purelib"]  # ours; PYTHONPATH skips its .pth files
    run(
        venv / "bin" / "python",
        "-c",
        code,
        cwd=venv,
        env={**os.environ, "PYTHONPATH": site_packages},
    )


FRAMEWORK_MODULES = {"m2m_auth_kit.django", "m2m_auth_kit.drf", "m2m_auth_kit.guards"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("kit-server")) as process:
        yield process


def test_the_package_suite_passes_in_the_virtualenv_against_our_server(test_venv, server, tmp_path):
    made = json.loads(server.manage("create_management_client", "--name", "kit").stdout)
    # A copy of the tests alone (and the README, whose recipes they run): the package comes from
    # the wheel, not from src/.
    shutil.copytree(KIT / "tests", tmp_path / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(KIT / "README.md", tmp_path / "README.md")
    env = child_env(
        M2M_KIT_SERVER_URL=server.url,
        M2M_KIT_MGMT_CLIENT_ID=made["client_id"],
        M2M_KIT_MGMT_CLIENT_SECRET=made["client_secret"],
    )
    python = test_venv / "bin" / "python"
    assert subprocess.run([python, "-c", "import django"], capture_output=True).returncode != 0

    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert_all_passed(result)
    assert "test_readme_recipes.py" in result.stdout  # Flask and FastAPI were there: none skipped
    # No secret of ours in the server's log.
    assert made["client_secret"] not in server.log_text()


# Everything the guards' tests need, and nothing of the server: its conftest and settings stay out.
GUARD_TEST_FILES = (
    "__init__.py",
    "conftest.py",
    "server.py",
    "urls_guards.py",
    "guard_settings.py",
    "test_guards.py",
)


def test_the_guards_pass_their_tests_on_django_4_2(django42_venv, tmp_path):
    python = django42_venv / "bin" / "python"
    versions = run(python, "-c", "import django, rest_framework; print(django.get_version())")
    assert versions.stdout.startswith("4.2."), versions.stdout
    kit_tests = tmp_path / "tests" / "kit"
    kit_tests.mkdir(parents=True)
    (tmp_path / "tests" / "__init__.py").touch()
    for name in GUARD_TEST_FILES:
        shutil.copy(ROOT / "tests" / "kit" / name, kit_tests / name)

    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/kit"],
        cwd=tmp_path,
        env=child_env(DJANGO_SETTINGS_MODULE="tests.kit.guard_settings", PYTHONPATH=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=600,
    )

    passed = assert_all_passed(result)
    # Every test of the module ran there, and the guards came from the wheel in that virtualenv.
    guards = str(ROOT / "tests" / "kit" / "test_guards.py")
    here = run(sys.executable, "-m", "pytest", "-q", "--collect-only", guards, cwd=ROOT)
    assert passed == here.stdout.count("test_guards.py::") > 0, here.stdout[-2000:]
    where = run(python, "-c", "import m2m_auth_kit.drf as m; print(m.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(django42_venv)), where.stdout


def assert_all_passed(result: subprocess.CompletedProcess) -> int:
    """A pytest run in a virtualenv passed, with nothing skipped; how many tests passed."""
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary
    return int(summary.split(" passed")[0].split()[-1])
