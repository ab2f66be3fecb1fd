"""The relay's boundaries: `app` stands alone. The fake Infusionsoft (fake_keap/), the
benchmarks (bench/), the dev/test support (devkit/) and the tests are development tools of
a source checkout: `app` never imports them (but `relay sandbox`, lazily), and neither the
wheel nor the Docker image carries them."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app"
DEV_PACKAGES = ("fake_keap", "bench", "devkit", "tests")


def imported_modules(source: Path) -> set[str]:
    """Every module an ``import`` or ``from … import`` statement names, anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_app_module_imports_a_development_package() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(
            name for name in imported_modules(path) if name.split(".")[0] in DEV_PACKAGES
        )
        for path in sorted(APP.rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_every_app_module_imports_with_the_development_packages_hidden() -> None:
    """Import every module of app/ in a fresh interpreter where fake_keap, bench, devkit
    and tests cannot be imported: an import at module level of any of them fails here."""
    modules = sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in APP.rglob("*.py")
        if path.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {DEV_PACKAGES!r}: sys.modules[name] = None\n"
        f"for module in {modules!r}: importlib.import_module(module)\n"
        f"assert not [m for m in sys.modules if m.split('.')[0] in {DEV_PACKAGES!r}"
        " and sys.modules[m] is not None]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(modules) > 50  # every module, not a handful


def _sandbox_loader_in(checkout: Path) -> str:
    """What ``load_fake_keap`` finds when app/ is imported from ``checkout`` the way an
    editable install imports it: by its own finder, without the checkout on sys.path."""
    code = (
        "import importlib.util, sys\n"
        "root = sys.argv[1]\n"
        "spec = importlib.util.spec_from_file_location('app', root + '/app/__init__.py',"
        " submodule_search_locations=[root + '/app'])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['app'] = module\n"
        "spec.loader.exec_module(module)\n"
        "from app.sandbox import load_fake_keap\n"
        "fake = load_fake_keap()\n"
        "print(None if fake is None else fake.__file__)\n"
    )
    elsewhere = checkout.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(checkout)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_the_sandbox_finds_the_fake_beside_app_in_a_source_checkout(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__")
    checkout = tmp_path / "checkout"
    shutil.copytree(APP, checkout / "app", ignore=ignore)
    shutil.copytree(REPO / "fake_keap", checkout / "fake_keap", ignore=ignore)
    assert _sandbox_loader_in(checkout) == str(checkout / "fake_keap" / "__init__.py")


def test_the_sandbox_finds_no_fake_where_app_is_installed_alone(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    shutil.copytree(APP, site / "app", ignore=shutil.ignore_patterns("__pycache__"))
    assert _sandbox_loader_in(site) == "None"


def test_the_wheel_holds_app_alone(tmp_path: Path) -> None:
    """``pip wheel .`` over a copy of the source tree (build/ and the egg-info stay out of
    the checkout): the wheel holds the app package, its data files and its metadata."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("app", *[p for p in DEV_PACKAGES if (REPO / p).is_dir()]):
        shutil.copytree(REPO / package, source / package, ignore=ignore)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q",
         "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"app", "infusionsoft_relay-0.1.0.dist-info"}
    assert "app/sandbox.py" in names
    assert "app/store/sqlite_ingest_child.py" in names  # run by its path, never imported
    assert any(n.startswith("app/admin/templates/") for n in names)  # its data files too
    assert not [n for n in names if "fake_keap" in n]


def test_the_image_copies_app_alone() -> None:
    """The Dockerfile's COPY lines bring the lock, the project metadata and app/; the
    development packages stay out of the build context too (.dockerignore)."""
    copies = re.findall(r"^COPY\s+(.+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    sources = {word for line in copies for word in line.split()[:-1]}
    assert sources == {"requirements.lock", "pyproject.toml", "README.md", "app"}
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {f"{p}/" for p in DEV_PACKAGES} <= set(ignored)


def test_the_lock_pins_every_runtime_dependency_and_the_otel_extra() -> None:
    """requirements.lock (what the image installs) pins, within pyproject.toml's bounds,
    every runtime dependency and the otel extra's: a dependency added to pyproject.toml
    alone would be missing from the image, and tracing would be off there."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["otel"]]
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not pinned in requirements.lock"
        assert requirement.specifier.contains(pins[name]), (requirement, pins[name])
    assert "psycopg-binary" in pins  # psycopg[binary]: the image has no libpq of its own
