"""Ingest beside delivery (``python -m bench --only beside``): webhooks' rate and latency
on SQLite while the relay also delivers, against the same relay ingesting alone.

Two ``relay serve`` on SQLite, measured in alternation, each started for its round on a
fresh file: ``--workers 0`` (ingest alone) and ``--workers 1`` against the fake
Infusionsoft (its answers 20 ms late, 50 calls a second), which delivers the events as
they arrive. Under ``wrk -c32`` both writers of the second relay commit at once: the
ingest writer process (webhooks) and the writer thread (delivery's claims and outcomes),
taking turns on ``relay.db-turn`` (app/store/sqlite_turns.py). The figures: each one's
accepted/s and p50/p90/p99, the ratios beside / alone, the events delivered meanwhile,
and that every 202 is a stored row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import databases, servers
from bench.delivery import statuses_of
from bench.ingest import CONFIG, ids_stored, summarise
from bench.wrk import run_wrk

Log = Callable[[str], None]
API_KEY = "beside-key"
PER_SECOND, PER_MINUTE, LATENCY_MS = 50, 3000, 20.0
ALONE, BESIDE = "ingest alone", "beside delivery"
RELAYS = ((ALONE, 0), (BESIDE, 1))
WARM_TIMEOUT = 30.0


@dataclass(frozen=True)
class BesidePlan:
    rounds: int
    seconds: float
    connections: int = 32


FULL = BesidePlan(rounds=4, seconds=15)
QUICK = BesidePlan(rounds=2, seconds=3)


@dataclass
class Relay:
    name: str
    url: str
    db: Path


def run_beside(plan: BesidePlan, wrk: str, workdir: Path, log: Log) -> dict[str, Any]:
    rounds: list[dict[str, Any]] = []
    with ExitStack() as stack:
        fake = servers.start_fake_keap(
            servers.free_port(),
            workdir / "beside-fake-keap.log",
            api_key=API_KEY,
            per_second=PER_SECOND,
            per_minute=PER_MINUTE,
            latency_ms=LATENCY_MS,
        )
        stack.callback(fake.stop)
        assert fake.url is not None
        for index in range(plan.rounds):
            order = RELAYS if index % 2 == 0 else RELAYS[::-1]
            for name, workers in order:
                # A relay of its own each round, on a fresh file, alone on the machine
                # but for the fake: the other's worker does not deliver meanwhile.
                with _relay(name, workers, fake.url, workdir / f"round-{index}") as relay:
                    record = _measure(plan, wrk, relay, workdir)
                record["round"] = index + 1
                rounds.append(record)
                log(
                    f"round {index + 1}/{plan.rounds} {name:16} "
                    f"{record['accepted_per_second']:6.0f} accepted/s  p90 "
                    f"{record['p90_ms']:.1f} ms  p99 {record['p99_ms']:.1f} ms  delivered "
                    f"{record['delivered']}"
                )
    summary = {name: _summarise(name, rounds) for name, _ in RELAYS}
    alone, beside = summary[ALONE], summary[BESIDE]
    return {
        "plan": {
            "rounds": plan.rounds,
            "seconds_per_round": plan.seconds,
            "wrk": f"wrk -t1 -c{plan.connections} -d{plan.seconds:g}s -s bench/post.lua --latency",
            "fake": f"python -m fake_keap --per-second {PER_SECOND} --per-minute "
            f"{PER_MINUTE} --latency-ms {LATENCY_MS:g}",
            "relays": "relay serve on a fresh SQLite file each round (bench/bench.yaml), "
            "--workers 0 and --workers 1 against the fake at its ceilings, once one webhook "
            "went through",
        },
        "targets": summary,
        "ratios": {
            "accepted_beside_over_alone": round(
                beside["accepted_per_second"] / alone["accepted_per_second"], 3
            ),
            "p99_beside_over_alone": round(beside["p99_ms"] / alone["p99_ms"], 2),
        },
        "every_202_stored": all(r["every_202_id_stored"] for r in rounds),
        "rounds": rounds,
    }


@contextmanager
def _relay(name: str, workers: int, fake_url: str, folder: Path) -> Iterator[Relay]:
    """``relay serve --workers N`` on a fresh file, once a first webhook is stored (and
    with a worker, delivered): started, warm, its worker running."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"{workers}.db"
    keap = {
        "RELAY_KEAP_API_KEY": API_KEY,
        "RELAY_KEAP_BASE_URL": f"{fake_url}/crm",
        "RELAY_KEAP_TOKEN_URL": f"{fake_url}/token",
        # The fake's ceilings: delivery as fast as Infusionsoft lets it, its writes with it.
        "RELAY_KEAP_RATE_PER_SECOND": str(PER_SECOND),
        "RELAY_KEAP_RATE_PER_MINUTE": str(PER_MINUTE),
    }
    process = servers.start_relay_serve(
        databases.sqlite_url(db),
        CONFIG,
        servers.free_port(),
        folder / f"{workers}.log",
        workers=workers,
        extra=keap,
    )
    try:
        assert process.url is not None
        relay = Relay(name, process.url, db)
        _warm(relay, delivered=workers > 0)
        yield relay
    finally:
        process.stop()


def _warm(relay: Relay, *, delivered: bool) -> None:
    body = {"event": "order.success", "order_id": "warm-up", "customer": {"email": "w@e.com"}}
    answer = httpx.post(
        f"{relay.url}/hooks/bench", json=body, headers={"X-Relay-Token": "bench-token"}
    )
    answer.raise_for_status()
    deadline = time.monotonic() + WARM_TIMEOUT
    while delivered and statuses_of(relay.db).get("delivered", 0) == 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{relay.name}: the warm-up webhook was not delivered")
        time.sleep(0.1)


def _measure(plan: BesidePlan, wrk: str, relay: Relay, workdir: Path) -> dict[str, Any]:
    delivered_before = statuses_of(relay.db).get("delivered", 0)
    ids_file = workdir / "beside-ids.txt"
    result = run_wrk(
        wrk, relay.url, seconds=plan.seconds, connections=plan.connections, ids_file=ids_file
    )
    record: dict[str, Any] = {"target": relay.name, **result.as_json()}
    record["delivered"] = statuses_of(relay.db).get("delivered", 0) - delivered_before
    record.update(ids_stored(ids_file, databases.sqlite_event_ids(relay.db), result.accepted))
    return record


def _summarise(name: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The ingest benchmark's summary of this relay's rounds, and what it delivered."""
    mine = [r for r in rounds if r["target"] == name]
    delivered = sum(r["delivered"] for r in mine) / sum(r["seconds"] for r in mine)
    return {**summarise(name, rounds), "delivered_per_second": round(delivered, 1)}
