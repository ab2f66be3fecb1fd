"""Start and stop the processes a benchmark measures: ``relay serve``, ``relay worker``,
the bare baseline app and the fake Infusionsoft, all on loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devkit.answers import wait_answers as devkit_wait_answers

REPO = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def relay_env(
    database_url: str, config: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a relay process: this one's, minus any RELAY_ setting of the
    person running the benchmark, plus the benchmark's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        {
            "RELAY_DATABASE_URL": database_url,
            "RELAY_CONFIG": str(config),
            "RELAY_LOG_FORMAT": "json",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra or {})
    return env


def spawn(name: str, argv: list[str], env: dict[str, str], log: Path) -> Process:
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=out)
    return Process(name, popen, log)


def start_relay_serve(
    database_url: str,
    config: Path,
    port: int,
    log: Path,
    *,
    workers: int = 0,
    extra: dict[str, str] | None = None,
) -> Process:
    """``relay serve --workers N`` (API only by default), once /healthz answers."""
    argv = [sys.executable, "-m", "app.cli", "serve", "--workers", str(workers)]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    process = spawn("relay serve", argv, relay_env(database_url, config, extra), log)
    process.url = f"http://127.0.0.1:{port}"
    wait_healthy(process)
    return process


def start_relay_worker(
    database_url: str, config: Path, log: Path, extra: dict[str, str]
) -> Process:
    argv = [sys.executable, "-m", "app.cli", "worker"]
    return spawn("relay worker", argv, relay_env(database_url, config, extra), log)


def start_bare(port: int, log: Path) -> Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "bench.bare_app", "--port", str(port)]
    process = spawn("bare FastAPI", argv, env, log)
    process.url = f"http://127.0.0.1:{port}"
    wait_healthy(process)
    return process


def start_fake_keap(
    port: int,
    log: Path,
    *,
    api_key: str,
    per_second: int,
    per_minute: int,
    latency_ms: float,
    oauth: tuple[str, str, str] | None = None,
) -> Process:
    """``python -m fake_keap`` with these ceilings; ``url`` is its root. ``oauth``:
    (client id, client secret, first refresh token) it also accepts."""
    argv = [sys.executable, "-m", "fake_keap", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--api-key", api_key, "--per-second", str(per_second)]
    argv += ["--per-minute", str(per_minute), "--latency-ms", str(latency_ms)]
    if oauth is not None:
        argv += ["--client-id", oauth[0], "--client-secret", oauth[1], "--refresh-token", oauth[2]]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = spawn("fake Infusionsoft", argv, env, log)
    process.url = f"http://127.0.0.1:{port}"
    wait_answers(process, "/_fake/state?log_limit=0")
    return process


def wait_healthy(process: Process) -> None:
    wait_answers(process, "/healthz")


def wait_answers(process: Process, path: str) -> None:
    devkit_wait_answers(
        f"{process.url}{path}",
        process.popen,
        name=process.name,
        log_tail=process.log_tail,
        timeout=STARTUP_TIMEOUT,
    )
