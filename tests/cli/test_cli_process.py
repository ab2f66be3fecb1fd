"""``python -m app.cli`` (what the ``relay`` script runs) exits with the command's code."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.admin.conftest import new_event
from tests.cli.conftest import database_url, seed
from tests.conftest import CONFIG_YAML, SECRETS


def run_relay(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    (cwd / "relay.yaml").write_text(CONFIG_YAML)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env={**clean, **SECRETS, "RELAY_DATABASE_URL": database_url(cwd), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_relay_command_runs_check_events_and_replay(tmp_path: Path) -> None:
    event = new_event(received_at=time.time(), email="ada@example.com")
    seed(database_url(tmp_path), [event], dead={event.id: 1})

    check = run_relay("check", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "paid-order" in check.stdout

    events = run_relay("events", "--status", "dead", cwd=tmp_path)
    assert events.returncode == 0, events.stderr
    assert event.id in events.stdout
    assert "a***@example.com" in events.stdout

    replay = run_relay("replay", "--status", "dead", cwd=tmp_path)
    assert (replay.returncode, replay.stdout) == (0, "requeued 1 event\n")
    after = run_relay("events", "--status", "dead", cwd=tmp_path)
    assert after.stdout == "no events match these filters\n"


def test_the_relay_command_exits_2_on_problems_and_0_on_help(tmp_path: Path) -> None:
    missing = run_relay("events", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no database at" in missing.stderr
    bad_config = run_relay("check", cwd=tmp_path, RELAY_CONFIG="nowhere.yaml")
    assert bad_config.returncode == 2
    helped = run_relay("--help", cwd=tmp_path)
    assert helped.returncode == 0
    assert "events" in helped.stdout
    usage = run_relay("replay", "--status", "gone", cwd=tmp_path)
    assert usage.returncode == 2
    assert "invalid choice: 'gone'" in usage.stderr
