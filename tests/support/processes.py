"""Run the relay as a real process, the way a user does (``relay serve``)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devkit.answers import wait_answers
from fake_keap.server import FakeKeapServer

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range (32768-60999 on Linux): a port
    from bind(0) is in that range, where any process's next outgoing connection may take
    it before the relay binds it ("address already in use" with other test runs busy)."""
    rng = random.SystemRandom()
    while True:
        port = rng.randrange(20000, 32768)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def relay_env(
    tmp_path: Path, database_url: str, config_text: str | None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    # The checkout under test, not whatever `app` the venv's install points at (a shared
    # venv's editable install may be another worktree's).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    config = tmp_path / "relay.yaml"
    if config_text is not None:
        config.write_text(config_text)
    env.update(
        {
            "RELAY_DATABASE_URL": database_url,
            "RELAY_CONFIG": str(config),
            "RELAY_LOG_FORMAT": "json",
        }
    )
    env.update(extra or {})
    return env


def keap_env(fake: FakeKeapServer, api_key: str) -> dict[str, str]:
    """The settings that point a relay process at ``fake``, signed in with ``api_key``:
    for ``relay_env``'s ``extra``, with the test's own settings beside them."""
    return {
        "RELAY_KEAP_API_KEY": api_key,
        "RELAY_KEAP_BASE_URL": fake.base_url,
        "RELAY_KEAP_TOKEN_URL": fake.token_url,
    }


def start_relay(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    port: int | None = None,
    log_name: str = "relay.log",
) -> subprocess.Popen[bytes]:
    """Start ``relay <args>``; with a port, wait until /healthz answers."""
    with open(cwd / log_name, "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args], env=env, cwd=cwd, stdout=log, stderr=log
        )
    if port is not None:
        wait_healthy(f"http://127.0.0.1:{port}", process, cwd / log_name)
    return process


@contextmanager
def serving_api(
    tmp_path: Path, database_url: str, config_text: str, extra: dict[str, str]
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``relay serve --workers 0`` (API only) on a free loopback port, with ``extra``
    settings, until the block ends: its (port, process)."""
    port = free_port()
    env = relay_env(
        tmp_path,
        database_url,
        config_text,
        {**extra, "RELAY_PORT": str(port), "RELAY_HOST": "127.0.0.1"},
    )
    process = start_relay(["serve", "--workers", "0"], env, tmp_path, port)
    try:
        yield port, process
    finally:
        stop(process)


def wait_healthy(
    base_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 20.0
) -> None:
    wait_answers(
        f"{base_url}/healthz",
        process,
        name="relay",
        log_tail=lambda: log.read_text()[-3000:],
        timeout=timeout,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
