"""Run wrk with ``bench/post.lua`` and read the one-line JSON summary the script prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "post.lua"
RESULT_PREFIX = "BENCH-RESULT "


class WrkError(RuntimeError):
    """wrk failed, or printed no summary line."""


@dataclass(frozen=True)
class WrkResult:
    requests: int  # complete responses
    seconds: float
    accepted: int  # 202 answers
    non_2xx_3xx: int
    socket_errors: int  # connect, read, write and timeout errors
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "requests_per_second": round(self.requests_per_second, 1),
            "accepted_per_second": round(self.accepted_per_second, 1),
        }


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version(path: str) -> str:
    completed = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    first = (completed.stdout or completed.stderr).splitlines()
    return first[0].split("Copyright")[0].strip() if first else "unknown"


def run_wrk(
    path: str,
    url: str,
    *,
    seconds: float,
    connections: int = 32,
    threads: int = 1,
    ids_file: Path | None = None,
) -> WrkResult:
    """Run wrk; with ``ids_file``, the event id of every 202 is written there."""
    argv = [
        path,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        "--latency",
        url,
    ]
    env = {**os.environ, "BENCH_IDS_FILE": str(ids_file) if ids_file else ""}
    completed = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=seconds + 60, env=env
    )
    if completed.returncode != 0:
        raise WrkError(f"wrk exited with {completed.returncode}: {completed.stderr.strip()}")
    return parse_wrk_output(completed.stdout)


def parse_wrk_output(stdout: str) -> WrkResult:
    """The summary that ``post.lua``'s ``done`` prints (latencies in microseconds)."""
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            data = json.loads(line.removeprefix(RESULT_PREFIX))
            break
    else:
        raise WrkError(f"wrk printed no {RESULT_PREFIX.strip()} line:\n{stdout[-2000:]}")
    latency = data["latency_us"]
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        accepted=int(data["accepted"]),
        non_2xx_3xx=int(data["non_2xx_3xx"]),
        socket_errors=sum(int(v) for v in data["socket_errors"].values()),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        mean_ms=round(latency["mean"] / 1000, 3),
        max_ms=latency["max"] / 1000,
    )
