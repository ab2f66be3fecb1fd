"""The delivery benchmark: a backlog of stored events drained by ``relay worker`` against
the fake Infusionsoft with key-auth ceilings (5/s, 240/min) and 150 ms of latency.

The events are stored through the relay's own API (``relay serve --workers 0``); the
worker starts only once all are stored, so the drain is one uninterrupted backlog.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import databases, servers
from bench.drain import Call, analyse_drain, calls_from_log

CONFIG = Path(__file__).resolve().parent / "bench.yaml"
API_KEY = "bench-key"
PER_SECOND = 5
PER_MINUTE = 240
LATENCY_MS = 150.0
# Each event: contact upsert, one tag, one action set (bench.yaml's route), i.e. what a
# typical "order paid" route does: a contact, a tag for segmentation, an automation.
CALLS_PER_EVENT = 3
UTILISATION_TARGET = 0.95

Log = Callable[[str], None]


@dataclass(frozen=True)
class DeliveryPlan:
    events: int


FULL = DeliveryPlan(events=300)
QUICK = DeliveryPlan(events=100)


@dataclass
class DrainOutcome:
    calls: list[Call]
    wall_seconds: float
    statuses: dict[str, int]


def run_delivery(plan: DeliveryPlan, workdir: Path, log: Log) -> dict[str, Any]:
    db = workdir / "delivery.db"
    url = databases.sqlite_url(db)
    fake = start_fake(workdir, "delivery")
    try:
        log(f"storing {plan.events} events through relay serve --workers 0")
        store_backlog(url, plan.events, workdir)
        outcome = _drain(url, db, fake, plan.events, workdir, log)
    finally:
        fake.stop()
    figures = analyse_drain(
        outcome.calls,
        events=plan.events,
        per_second=PER_SECOND,
        per_minute=PER_MINUTE,
        latency=LATENCY_MS / 1000,
    )
    figures["wall_seconds_worker_start_to_all_delivered"] = round(outcome.wall_seconds, 2)
    figures["final_statuses"] = outcome.statuses
    return {
        "plan": {
            "events": plan.events,
            "calls_per_event_planned": CALLS_PER_EVENT,
            "route": "contact upsert + tags: [101] + action_set: 42 (bench/bench.yaml)",
            "fake": f"python -m fake_keap --per-second {PER_SECOND} --per-minute "
            f"{PER_MINUTE} --latency-ms {LATENCY_MS:g}",
            "worker": "relay worker, key auth, default ceilings (5/s, 240/min, 30000/day), "
            "RELAY_WORKER_CONCURRENCY default (8), SQLite",
        },
        "ceilings": {"per_second": PER_SECOND, "per_minute": PER_MINUTE, "latency_ms": LATENCY_MS},
        "figures": figures,
        "target": _target(figures, outcome.statuses, plan.events),
        "series": _series(outcome.calls),
    }


def store_backlog(url: str, events: int, workdir: Path) -> None:
    relay = servers.start_relay_serve(
        url, CONFIG, servers.free_port(), workdir / "delivery-serve.log"
    )
    try:
        with httpx.Client(base_url=relay.url or "", timeout=10) as client:
            for i in range(events):
                response = client.post(
                    "/hooks/bench",
                    headers={"x-relay-token": "bench-token"},
                    json={
                        "event": "order.success",
                        "order_id": f"delivery-{i}",
                        "customer": {
                            "email": f"buyer{i}@example.com",
                            "first_name": "Ada",
                            "last_name": "Lovelace",
                        },
                        "total": "49.00",
                    },
                )
                if response.status_code != 202:
                    raise RuntimeError(
                        f"event {i} not accepted: {response.status_code} {response.text}"
                    )
    finally:
        relay.stop()


def _drain(
    url: str, db: Path, fake: servers.Process, events: int, workdir: Path, log: Log
) -> DrainOutcome:
    extra = {
        "RELAY_KEAP_API_KEY": API_KEY,
        "RELAY_KEAP_BASE_URL": f"{fake.url}/crm",
        "RELAY_KEAP_TOKEN_URL": f"{fake.url}/token",
    }
    worker_log = workdir / "delivery-worker.log"
    wall, statuses = drain_backlog(
        url, functools.partial(statuses_of, db), CONFIG, extra, events, worker_log, log
    )
    state = httpx.get(f"{fake.url}/_fake/state", timeout=30).json()
    return DrainOutcome(calls_from_log(state["requests"]), wall, statuses)


def start_fake(workdir: Path, name: str) -> servers.Process:
    """The fake Infusionsoft at key-auth ceilings with the benchmark's latency."""
    return servers.start_fake_keap(
        servers.free_port(),
        workdir / f"{name}-fake-keap.log",
        api_key=API_KEY,
        per_second=PER_SECOND,
        per_minute=PER_MINUTE,
        latency_ms=LATENCY_MS,
    )


def drain_backlog(
    url: str,
    statuses_now: Callable[[], dict[str, int]],
    config: Path,
    extra: dict[str, str],
    events: int,
    worker_log: Path,
    log: Log,
    replicas: int = 1,
) -> tuple[float, dict[str, int]]:
    """Run ``relay worker`` (``replicas`` processes) until every stored event is
    delivered or dead: the seconds from their start, and the final statuses."""
    calls = events * CALLS_PER_EVENT
    # Generous: twice the fastest possible drain at CALLS_PER_EVENT, plus start-up.
    timeout = 2 * (calls / PER_MINUTE * 60) + 60
    started = time.monotonic()
    workers = [
        servers.start_relay_worker(url, config, worker_log.with_suffix(f".{i}.log"), extra)
        for i in range(replicas)
    ]
    try:
        next_report = started
        while True:
            statuses = statuses_now()
            finished = statuses.get("delivered", 0) + statuses.get("dead", 0)
            if finished >= events:
                break
            for worker in workers:
                if worker.popen.poll() is not None:
                    raise RuntimeError(f"relay worker exited:\n{worker.log_tail()}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the backlog did not drain in {timeout:.0f} s: {statuses}")
            if time.monotonic() >= next_report:
                log(f"  {time.monotonic() - started:5.0f} s  {statuses}")
                next_report += 15
            time.sleep(0.25)
        wall = time.monotonic() - started
    finally:
        for worker in workers:
            worker.stop()
    log(f"  drained in {wall:.1f} s: {statuses}")
    return wall, statuses


def statuses_of(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT status, COUNT(*) FROM events GROUP BY status").fetchall()
    finally:
        conn.close()
    return {str(status): int(count) for status, count in rows}


def _target(figures: dict[str, Any], statuses: dict[str, int], events: int) -> dict[str, Any]:
    use = figures.get("full_minute_use") or []
    return {
        "full_minute_use_at_least": UTILISATION_TARGET,
        "no_429_after_first_second": True,
        "met": bool(use)
        and min(use) >= UTILISATION_TARGET
        and figures.get("throttled_429_after_first_second") == 0
        and statuses.get("delivered") == events,
    }


def _series(calls: list[Call]) -> dict[str, Any]:
    """The request log, relative to the first call, for the plot and for re-analysis."""
    if not calls:
        return {"start": None, "calls": []}
    start = calls[0].at
    return {
        "start": start,
        "calls": [[round(c.at - start, 4), c.status, c.operation] for c in calls],
    }
