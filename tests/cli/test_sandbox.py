"""`relay sandbox`: the README and docs/sandbox.md walk-through, in this environment."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from app import sandbox
from tests.cli.conftest import Cli
from tests.support.walkthrough import walk_through

REPO = Path(__file__).resolve().parents[2]


def test_the_sandbox_walk_through(tmp_path: Path) -> None:
    """init → check (placeholders) → sandbox → a signed Shopify order delivered to the fake
    → a failure on purpose → a dead ThriveCart order → both on the dashboard."""
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    shutil.copytree(REPO / "docs" / "examples", tmp_path / "docs" / "examples")
    shutil.copy(REPO / "docs" / "sandbox.md", tmp_path / "docs" / "sandbox.md")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    relay = shutil.which("relay", path=str(Path(sys.executable).parent))
    assert relay, "relay is not installed in this environment (pip install -e .)"
    walk_through([relay], tmp_path, env)


def test_a_busy_fake_port_is_named_with_the_way_out(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("sandbox", "--fake-port", str(port))
    assert result.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.err
    assert "--fake-port" in result.err


def test_an_unusable_sandbox_database_is_named(cli: Cli) -> None:
    result = cli("sandbox", "--database", "postgresql://127.0.0.1:1/none?connect_timeout=1")
    assert result.code == 2
    assert result.err.startswith("cannot open the database (--database):")


def test_without_a_source_checkout_the_sandbox_says_it_needs_one(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed wheel has no fake_keap: the sandbox says what it needs, and stops."""
    monkeypatch.setitem(sys.modules, "fake_keap", None)  # not importable
    monkeypatch.setattr(sandbox, "source_checkout", lambda: tmp_path / "site-packages")
    result = cli("sandbox")
    assert result.code == 2
    assert result.err.strip() == sandbox.NEEDS_CHECKOUT
    assert "needs a source checkout" in result.err
