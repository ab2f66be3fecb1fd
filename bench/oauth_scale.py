"""Delivery scenario (b), OAuth scale: a backlog drained at OAuth ceilings (25/s,
1 500/min) with 150 ms of latency, by one ``relay worker`` and by two replicas sharing
PostgreSQL; the figure is the share of the quota used in every full minute (target 95%).

The route is bench/bench.yaml's (upsert + tag + action set), so the action set keeps
each event at two calls or more whatever the batching; the gate's windows are slightly
wider than Keap's (1.04 s, 60.5 s), which caps the use at 96% (25 calls per 1.04 s).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import databases, servers
from bench.delivery import (
    API_KEY,
    CONFIG,
    LATENCY_MS,
    Log,
    drain_backlog,
    series_of,
    store_backlog,
)
from bench.delivery_audit import audit_database
from bench.drain import analyse_drain, calls_from_log

PER_SECOND, PER_MINUTE = 25, 1500
OAUTH = ("bench-app", "bench-app-secret", "bench-refresh-0")
CONCURRENCY = 128  # per worker: 25 calls a second while events wait up to 1.5 s for a batch
UTILISATION_TARGET = 0.95


@dataclass(frozen=True)
class OAuthPlan:
    events: int


FULL = OAuthPlan(events=1800)  # about 2.5 minutes of calls: two full minutes or more
QUICK = OAuthPlan(events=300)


def run_oauth_scale(plan: OAuthPlan, postgres_url: str, workdir: Path, log: Log) -> dict[str, Any]:
    runs = {}
    for replicas in (1, 2):
        log(f"OAuth scale: {plan.events} events, {replicas} worker(s) on PostgreSQL")
        with databases.fresh_postgres_schema(postgres_url) as url:
            runs[f"{replicas}_worker{'s' if replicas > 1 else ''}"] = _run(
                plan, url, replicas, workdir / f"oauth-{replicas}", log
            )
    return {
        "plan": {
            "events": plan.events,
            "route": "contact upsert + tags: [101] + action_set: 42 (bench/bench.yaml)",
            "worker": f"relay worker with OAuth, RELAY_WORKER_CONCURRENCY={CONCURRENCY}, "
            "PostgreSQL, reuse and batching at their defaults",
        },
        "ceilings": {"per_second": PER_SECOND, "per_minute": PER_MINUTE, "latency_ms": LATENCY_MS},
        "runs": runs,
        "target": {
            "full_minute_use_at_least": UTILISATION_TARGET,
            "met": all(r["met"] for r in runs.values()),
        },
    }


def _run(plan: OAuthPlan, url: str, replicas: int, workdir: Path, log: Log) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    fake = servers.start_fake_keap(
        servers.free_port(),
        workdir / "fake-keap.log",
        api_key=API_KEY,
        per_second=PER_SECOND,
        per_minute=PER_MINUTE,
        latency_ms=LATENCY_MS,
        oauth=OAUTH,
    )
    try:
        store_backlog(url, plan.events, workdir)
        extra = {
            "RELAY_KEAP_CLIENT_ID": OAUTH[0],
            "RELAY_KEAP_CLIENT_SECRET": OAUTH[1],
            "RELAY_KEAP_REFRESH_TOKEN": OAUTH[2],
            "RELAY_KEAP_BASE_URL": f"{fake.url}/crm",
            "RELAY_KEAP_TOKEN_URL": f"{fake.url}/token",
            "RELAY_WORKER_CONCURRENCY": str(CONCURRENCY),
        }
        wall, statuses = drain_backlog(
            url,
            functools.partial(_postgres_statuses, url),
            CONFIG,
            extra,
            plan.events,
            workdir / "worker.log",
            log,
            replicas=replicas,
        )
        state = httpx.get(f"{fake.url}/_fake/state", timeout=60).json()
    finally:
        fake.stop()
    calls = calls_from_log(state["requests"])  # the token endpoint's calls left out
    figures = analyse_drain(
        calls,
        events=plan.events,
        per_second=PER_SECOND,
        per_minute=PER_MINUTE,
        latency=LATENCY_MS / 1000,
    )
    figures["final_statuses"] = statuses
    figures["wall_seconds_worker_start_to_all_delivered"] = round(wall, 2)
    figures["applied_and_order"] = audit = audit_database(url)
    use = figures.get("full_minute_use") or []
    figures["met"] = (
        bool(use)
        and min(use) >= UTILISATION_TARGET
        and figures.get("throttled_429_after_first_second") == 0
        and statuses.get("delivered") == plan.events
        and audit["met"]
    )
    figures["series"] = series_of(calls)
    return figures


def _postgres_statuses(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT status, COUNT(*) FROM events GROUP BY status").fetchall()
    return {str(status): int(count) for status, count in rows}
