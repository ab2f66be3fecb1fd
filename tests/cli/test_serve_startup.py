"""`relay serve` says what it is doing on start — config, database, dry-run or live, rate
ceilings, worker — and `--api-only` (or the deprecated `--workers 0`) runs no worker."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config.startup import database_shown
from tests.conftest import CONFIG_YAML, SECRETS
from tests.support.processes import free_port, relay_env, start_relay, stop


def serve(tmp_path: Path, database_url: str, args: list[str], **extra: str) -> list[dict[str, Any]]:
    """Start ``relay serve ARGS``; its /readyz worker check, then its log lines as JSON."""
    port = free_port()
    env = relay_env(tmp_path, database_url, CONFIG_YAML, {**SECRETS, **extra})
    env.update({"RELAY_PORT": str(port), "RELAY_HOST": "127.0.0.1"})
    process = start_relay(["serve", *args], env, tmp_path, port)
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
    finally:
        stop(process)
    lines = (tmp_path / "relay.log").read_text().splitlines()
    return [ready, *(json.loads(line) for line in lines if line.startswith("{"))]


def by_message(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["message"]: line for line in lines}


def test_serve_logs_one_line_for_each_part_it_starts(tmp_path: Path, database_url: str) -> None:
    ready, *lines = serve(tmp_path, database_url, [])
    logged = by_message(lines)
    config = logged["config loaded"]
    assert config["sources"] == sorted(["shop", "woo", "stripe", "members", "legacy-cart",
                                        "thrivecart", "membermouse", "office"])  # fmt: skip
    assert config["routes"][:2] == ["paid-order", "woo-order"]
    assert "8 routes" in config["config"]
    assert logged["database opened"]["database"] == database_shown(database_url)
    dry_run = next(line for line in lines if line["message"].startswith("dry-run:"))
    assert dry_run["dry_run"] is True
    assert dry_run["credentials"] == "none"
    ceilings = logged["rate ceilings"]
    assert (ceilings["per_second"], ceilings["per_minute"], ceilings["per_day"]) == (5, 240, 30000)
    assert logged["worker"]["worker"] == "runs in this process"
    assert ready["checks"]["worker"]["status"] == "ok"


def test_serve_live_names_the_credential_kind_and_never_the_key(
    tmp_path: Path, sqlite_url: str
) -> None:
    key = "KeapAK-live-0123456789abcdef"
    _, *lines = serve(
        tmp_path, sqlite_url, ["--api-only"], RELAY_KEAP_API_KEY=key, RELAY_KEAP_RATE_PER_SECOND="3"
    )
    live = next(line for line in lines if line["message"].startswith("live:"))
    assert live["credentials"] == "API key (RELAY_KEAP_API_KEY)"
    assert live["dry_run"] is False
    assert by_message(lines)["rate ceilings"]["per_second"] == 3
    assert key not in (tmp_path / "relay.log").read_text()


@pytest.mark.parametrize("flag", [["--api-only"], ["--workers", "0"]])
def test_api_only_runs_no_worker(tmp_path: Path, sqlite_url: str, flag: list[str]) -> None:
    ready, *lines = serve(tmp_path, sqlite_url, flag)
    assert ready["checks"]["worker"] == {
        "status": "skipped",
        "detail": "this process runs no worker (--api-only)",
    }
    assert by_message(lines)["worker"]["worker"].startswith("off (--api-only)")
    deprecated = "relay serve: --workers 0 is deprecated; use --api-only"
    assert (deprecated in (tmp_path / "relay.log").read_text()) == (flag[0] == "--workers")


def test_serve_without_a_config_names_relay_init(tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    env = relay_env(tmp_path, sqlite_url, None, {"RELAY_PORT": str(port)})
    stop(start_relay(["serve", "--api-only", "--host", "127.0.0.1"], env, tmp_path, port))
    lines = [
        json.loads(x) for x in (tmp_path / "relay.log").read_text().splitlines() if x[:1] == "{"
    ]
    warning = next(line for line in lines if line["message"].startswith("no config file"))
    assert "relay init SENDER" in warning["hint"]
    assert by_message(lines)["config loaded"]["sources"] == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://relay:s3cret-pw@db:5432/relay", "postgresql://relay@db:5432/relay"),
        ("postgresql://db/relay?password=s3cret-pw&sslmode=require", "postgresql://db/relay"),
        ("sqlite:///./data/relay.db", "sqlite:///./data/relay.db"),
    ],
)
def test_the_database_is_shown_without_credentials(url: str, shown: str) -> None:
    assert database_shown(url) == shown


def test_worker_says_what_it_is_doing_too(tmp_path: Path, sqlite_url: str) -> None:
    env = relay_env(tmp_path, sqlite_url, CONFIG_YAML, dict(SECRETS))
    process = start_relay(["worker"], env, tmp_path)
    try:
        deadline = time.monotonic() + 20
        while '"message":"worker started"' not in (tmp_path / "relay.log").read_text():
            assert process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        stop(process)
    lines = [
        json.loads(x) for x in (tmp_path / "relay.log").read_text().splitlines() if x[:1] == "{"
    ]
    logged = by_message(lines)
    assert logged["worker"]["worker"] == "this process delivers only (no API)"
    assert logged["database opened"]["database"] == sqlite_url
    assert len(logged["config loaded"]["routes"]) == 8
