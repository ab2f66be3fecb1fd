"""The gates `.ci/run` relies on: RELAY_FORBID_SKIPS=1 turns a skipped test or module into
a failure (xfail stays), and the README's quick-start lines are found, one line each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.readme import quick_start_commands

REPO = Path(__file__).resolve().parents[1]
TESTS = """
import pytest

def test_passes():
    pass

def test_skips():
    pytest.skip("no tmpfs here")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
"""


def run_pytest(folder: Path, forbid: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RELAY_FORBID_SKIPS"}
    env["PYTHONPATH"] = str(REPO)
    if forbid:
        env["RELAY_FORBID_SKIPS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "devkit.no_skips", "-p", "no:cacheprovider",
         "-q", "-o", "asyncio_default_fixture_loop_scope=function", "--rootdir", str(folder),
         str(folder)],
        capture_output=True, text=True, env=env, cwd=folder, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("forbid", [False, True])
def test_a_skip_fails_only_when_skips_are_forbidden(tmp_path: Path, forbid: bool) -> None:
    (tmp_path / "test_sample.py").write_text(TESTS)
    done = run_pytest(tmp_path, forbid)
    if forbid:
        assert done.returncode == 1, done.stdout
        assert "1 failed, 1 passed, 1 xfailed" in done.stdout
        assert "RELAY_FORBID_SKIPS=1 forbids skips: no tmpfs here" in done.stdout
    else:
        assert done.returncode == 0, done.stdout
        assert "1 passed, 1 skipped, 1 xfailed" in done.stdout


def test_a_module_skipped_at_import_fails_when_skips_are_forbidden(tmp_path: Path) -> None:
    (tmp_path / "test_module.py").write_text(
        'import pytest\npytest.importorskip("no_such_module_here")\n\ndef test_x():\n    pass\n'
    )
    done = run_pytest(tmp_path, forbid=True)
    assert done.returncode != 0
    assert "module skipped, and RELAY_FORBID_SKIPS=1 forbids skips" in done.stdout


def test_the_readme_quick_start_is_two_one_line_venv_commands() -> None:
    commands = quick_start_commands((REPO / "README.md").read_text())
    for name in ("serve", "test"):
        assert commands[name].startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert commands["serve"].endswith("&& relay serve")
    assert commands["test"].endswith("&& pytest")


def test_a_multi_line_quick_start_is_refused() -> None:
    text = (
        "<!-- quick-start: serve -->\n```sh\na\nb\n```\n<!-- quick-start: test -->\n```sh\nc\n```"
    )
    with pytest.raises(ValueError, match="quick-start 'serve' must be one line"):
        quick_start_commands(text)


# Issue 16: small modules. A module past this is split by concern, not waved through.
MAX_MODULE_LINES = 420


def test_no_module_of_the_relay_is_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for package in ("app", "fake_keap", "devkit")
        for path in (REPO / package).rglob("*.py")
    }
    assert {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}
    assert sizes["app/delivery/worker.py"] > 0  # the walk found the code


def test_the_gates_of_issue_16_stay_on() -> None:
    config = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '"C90", "PT", "C4"' in config
    assert "max-complexity = 13" in config
    assert "strict = true" in config
