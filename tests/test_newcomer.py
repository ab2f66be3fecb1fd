"""A newcomer's first hour, from a clean copy of the repository: the README's quick start
run verbatim (its lines are read from README.md, so the README cannot drift), each in the
fresh venv it makes with the system's python3, then the sandbox walk-through of
docs/sandbox.md — init, check, sandbox, a signed post, delivered in the fake.

Slow (a pip install into a new venv): a few minutes. It checks HEAD, as a clone would
see it: commit first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

from devkit.answers import wait_answers
from tests.support.processes import free_port
from tests.support.readme import quick_start_commands
from tests.support.walkthrough import walk_through

REPO = Path(__file__).resolve().parents[1]
INSTALL_SECONDS = 600


def clean_copy(destination: Path) -> Path:
    """HEAD of this repository as ``git archive`` gives it: no venv, data or stray files."""
    archive = destination / "head.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "archive", "HEAD"], cwd=REPO, stdout=out, check=True)
    clone = destination / "relay"
    with tarfile.open(archive) as tar:
        tar.extractall(clone, filter="data")
    return clone


def stock_environment() -> dict[str, str]:
    """The environment without this test run's venv or RELAY_ settings: `python3` is the
    system's, which (on Debian) refuses `pip install` outside a venv."""
    venv = os.environ.get("VIRTUAL_ENV")
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (venv and p.startswith(venv))]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RELAY_", "PYTEST_", "VIRTUAL_ENV", "PYTHON"))
    }
    return {**env, "PATH": os.pathsep.join(path)}


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    wait_answers(
        url,
        process,
        name="the serve line",
        log_tail=lambda: log.read_text()[-3000:],
        timeout=INSTALL_SECONDS,
    )


@pytest.mark.timeout(3 * INSTALL_SECONDS)
def test_a_newcomer_gets_from_a_clean_clone_to_a_delivered_order(tmp_path: Path) -> None:
    clone = clean_copy(tmp_path)
    commands = quick_start_commands((clone / "README.md").read_text())
    env = stock_environment()

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen(
            ["bash", "-c", commands["serve"]],
            cwd=clone,
            env={**env, "RELAY_PORT": str(port), "RELAY_HOST": "127.0.0.1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops relay too
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", serve, log)
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=30)
    started = log.read_text()
    assert '"message":"config loaded"' in started
    assert "relay init" in started
    assert (clone / "data" / "relay.db").exists()  # SQLite in ./data, as the README says

    # The test line, verbatim; only collecting, as running the suite here would run this
    # test again (`.ci/run` runs the same line for real).
    tests = subprocess.run(
        ["bash", "-c", commands["test"]],
        cwd=clone,
        env={**env, "PYTEST_ADDOPTS": "--collect-only -q"},
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "tests/test_newcomer.py::test_a_newcomer" in tests.stdout

    walk_through([str(clone / ".venv" / "bin" / "relay")], clone, env)
