"""The ingest-beside-delivery scenario, in small: the two real ``relay serve`` and the fake
Infusionsoft on loopback, as ``python -m bench --only beside`` runs them, with a Python
sender in wrk's place (CI has no wrk): the relay with a worker delivers while it ingests,
the one without does not, every 202 is found stored, and the report shows both."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import beside
from bench.report import render_markdown
from bench.wrk import WrkResult

_numbers = itertools.count()


def python_wrk(
    path: str, url: str, *, seconds: float, connections: int, ids_file: Path
) -> WrkResult:
    """What bench/post.lua sends and records, one request at a time, for ``seconds``."""
    latencies: list[float] = []
    ids: list[str] = []
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() - started < seconds:
            n = next(_numbers)
            body = {
                "event": "order.success",
                "order_id": f"beside-{n}",
                "customer": {"email": f"buyer{n}@example.com", "first_name": "Ada"},
            }
            sent = time.monotonic()
            answer = client.post(
                "/hooks/bench", json=body, headers={"X-Relay-Token": "bench-token"}
            )
            latencies.append((time.monotonic() - sent) * 1000)
            if answer.status_code == 202:
                ids.append(answer.json()["event_id"])
    ids_file.write_text("\n".join(ids))
    latencies.sort()

    def at(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))]

    return WrkResult(
        requests=len(latencies),
        seconds=time.monotonic() - started,
        accepted=len(ids),
        non_2xx_3xx=len(latencies) - len(ids),
        socket_errors=0,
        p50_ms=at(0.5),
        p90_ms=at(0.9),
        p99_ms=at(0.99),
        mean_ms=sum(latencies) / len(latencies),
        max_ms=latencies[-1],
    )


def test_the_relay_with_a_worker_delivers_while_both_store_every_202(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(beside, "run_wrk", python_wrk)
    run = beside.run_beside(beside.BesidePlan(rounds=2, seconds=2), "wrk", tmp_path, print)
    rounds: list[dict[str, Any]] = run["rounds"]
    assert [r["target"] for r in rounds] == [
        beside.ALONE,
        beside.BESIDE,
        beside.BESIDE,
        beside.ALONE,  # alternating order
    ]
    assert all(r["accepted"] > 0 and r["every_202_id_stored"] for r in rounds)
    assert run["every_202_stored"]
    assert sum(r["delivered"] for r in rounds if r["target"] == beside.ALONE) == 0
    assert sum(r["delivered"] for r in rounds if r["target"] == beside.BESIDE) > 0
    assert run["targets"][beside.BESIDE]["delivered_per_second"] > 0
    machine = dict.fromkeys(("date", "cpu", "cores", "memory_gib", "kernel", "python"), "?")
    machine |= {"sqlite": "?", "postgresql": None, "wrk": None}
    text = render_markdown({"beside": {**run, "command": "test", "machine": machine}}, tmp_path)
    assert "## Ingest beside delivery" in text
    assert "| beside delivery |" in text
    assert "every 202 a stored row (each id checked): **yes**" in text
