"""The ingest benchmark: accepted webhooks per second and latency of ``relay serve
--workers 0`` on SQLite and on PostgreSQL, against a bare FastAPI endpoint that reads the
body and answers 202 — all served at once, measured in alternation, several rounds.

After every relay round the database is read: the event id of each 202 wrk saw must be a
stored row (not just as many rows as 202s). The settings that make each database's
commits durable are recorded with the results.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import capacity, cpu, databases, servers
from bench.wrk import WrkResult, run_wrk

CONFIG = Path(__file__).resolve().parent / "bench.yaml"
TARGET_RATIO = 0.9  # relay on SQLite / bare, with every 202 durable
POSTGRES_TARGET_RATIO = 0.8  # relay on PostgreSQL / bare, likewise (issue 16, item 7)
SETTLE_TIMEOUT = 10.0

Log = Callable[[str], None]


@dataclass(frozen=True)
class IngestPlan:
    rounds: int
    seconds: float
    warmup_seconds: float
    connections: int = 32
    threads: int = 1


FULL = IngestPlan(rounds=5, seconds=10, warmup_seconds=3)
QUICK = IngestPlan(rounds=3, seconds=3, warmup_seconds=1)


@dataclass
class Target:
    name: str
    url: str
    count_events: Callable[[], int] | None  # None: the baseline stores nothing
    event_ids: Callable[[], set[str]] | None = None  # the ids stored
    durability: Callable[[], dict[str, str]] | None = None  # the database's settings
    pid: int | None = None  # the process whose CPU each round records
    postgres: bool = False  # its rounds also record PostgreSQL's server processes' CPU


def run_ingest(
    plan: IngestPlan, wrk: str, postgres_url: str | None, workdir: Path, log: Log
) -> dict[str, Any]:
    notes: list[str] = []
    load_before = _load_average()
    log("measuring what the cores give at once (bench/capacity.py)")
    cores = capacity.measure()
    with ExitStack() as stack:
        targets = _start_targets(postgres_url, workdir, stack, notes, log)
        durability = {t.name: _durability_settings(t) for t in targets if t.durability}
        for target in targets:
            log(f"warm-up {target.name} ({plan.warmup_seconds:g} s)")
            run_wrk(
                wrk,
                target.url,
                seconds=plan.warmup_seconds,
                connections=plan.connections,
                threads=plan.threads,
            )
        rounds: list[dict[str, Any]] = []
        for index in range(plan.rounds):
            shift = index % len(targets)  # rotate the order: no target always goes first
            for target in targets[shift:] + targets[:shift]:
                record = _measure(plan, wrk, target, workdir)
                record["round"] = index + 1
                rounds.append(record)
                log(_describe_round(record, plan.rounds))
    summary = {target.name: summarise(target.name, rounds) for target in targets}
    return {
        "plan": {
            "rounds": plan.rounds,
            "seconds_per_round": plan.seconds,
            "warmup_seconds": plan.warmup_seconds,
            "wrk": f"wrk -t{plan.threads} -c{plan.connections} -d{plan.seconds:g}s "
            "-s bench/post.lua --latency",
            "relay": "relay serve --workers 0 (bench/bench.yaml: token source, one route "
            "with tags + action_set)",
        },
        "targets": summary,
        "durability": durability,
        # Other processes' work on the same cores slows the relay's database round trips
        # more than the bare endpoint: a loaded machine lowers the ratios.
        "load_average": {"before": load_before, "after": _load_average()},
        "capacity": cores,
        "ratios": _ratios(summary),
        "paired_ratios": _paired_ratios(rounds),
        "target": {
            "relay_sqlite_over_bare": TARGET_RATIO,
            "met": _target_met(summary, "relay-sqlite", TARGET_RATIO),
            "relay_postgres_over_bare": POSTGRES_TARGET_RATIO,
            "postgres_met": (
                _target_met(summary, "relay-postgres", POSTGRES_TARGET_RATIO)
                if "relay-postgres" in summary
                else None
            ),
        },
        "notes": notes,
        "rounds": rounds,
    }


def _start_targets(
    postgres_url: str | None, workdir: Path, stack: ExitStack, notes: list[str], log: Log
) -> list[Target]:
    targets: list[Target] = []
    db = workdir / "ingest.db"
    relay = servers.start_relay_serve(
        databases.sqlite_url(db), CONFIG, servers.free_port(), workdir / "relay-sqlite.log"
    )
    stack.callback(relay.stop)
    targets.append(
        Target(
            "relay-sqlite",
            _url(relay),
            lambda: databases.count_sqlite_events(db),
            lambda: databases.sqlite_event_ids(db),
            lambda: databases.sqlite_file_durability(db),
            relay.popen.pid,
        )
    )
    reason = (
        "no PostgreSQL URL given"
        if postgres_url is None
        else (databases.postgres_unreachable_reason(postgres_url))
    )
    if postgres_url is not None and reason is None:
        schema_url = stack.enter_context(databases.fresh_postgres_schema(postgres_url))
        relay_pg = servers.start_relay_serve(
            schema_url, CONFIG, servers.free_port(), workdir / "relay-postgres.log"
        )
        stack.callback(relay_pg.stop)
        targets.append(
            Target(
                "relay-postgres",
                _url(relay_pg),
                lambda: databases.count_postgres_events(schema_url),
                lambda: databases.postgres_event_ids(schema_url),
                lambda: databases.postgres_durability(schema_url),
                relay_pg.popen.pid,
                postgres=True,
            )
        )
    else:
        notes.append(f"relay-postgres skipped: {reason}")
        log(f"skipping relay-postgres: {reason}")
    bare = servers.start_bare(servers.free_port(), workdir / "bare.log")
    stack.callback(bare.stop)
    targets.append(Target("bare", _url(bare), None, pid=bare.popen.pid))
    return targets


def _url(process: servers.Process) -> str:
    assert process.url is not None
    return process.url


def _load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where not known."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _durability_settings(target: Target) -> dict[str, str]:
    """The relay's own report of its writer's settings (/readyz), and the database's."""
    assert target.durability is not None
    try:
        ready = httpx.get(f"{target.url}/readyz", timeout=5).json()
        relay = str(ready["checks"]["database"]["detail"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        relay = f"/readyz did not say: {exc}"
    return {"relay_readyz": relay, **target.durability()}


def _measure(plan: IngestPlan, wrk: str, target: Target, workdir: Path) -> dict[str, Any]:
    before = target.count_events() if target.count_events else None
    # Every target's wrk reads the 202s' bodies for their ids: the same work for each.
    ids_file = workdir / f"ids-{target.name}.txt"
    cpu_before = (
        cpu.sample(target.pid, postgres=target.postgres)
        if target.pid is not None and cpu.available()
        else None
    )
    result = run_wrk(
        wrk,
        target.url,
        seconds=plan.seconds,
        connections=plan.connections,
        threads=plan.threads,
        ids_file=ids_file,
    )
    record: dict[str, Any] = {"target": target.name, **result.as_json()}
    if cpu_before is not None:
        record.update(cpu.since(cpu_before, result.accepted))
    if target.count_events is not None and before is not None:
        stored = _settled_count(target.count_events) - before
        record.update(_durability(result, stored, plan.connections))
        if target.event_ids is not None:
            record.update(ids_stored(ids_file, target.event_ids(), result.accepted))
    return record


def ids_stored(ids_file: Path, stored: set[str], accepted: int) -> dict[str, Any]:
    """Every 202's event id must be a stored row: a count could hide a lost event behind
    a stored one that was never answered."""
    answered = ids_file.read_text().split() if ids_file.exists() else []
    missing = [event_id for event_id in answered if event_id not in stored]
    return {
        "ids_answered": len(answered),
        "ids_missing": len(missing),
        "ids_missing_sample": missing[:10],
        # wrk must have written an id for each 202 it counted, and each must be stored.
        "every_202_id_stored": len(answered) == accepted and not missing,
    }


def _settled_count(count: Callable[[], int]) -> int:
    """The row count once requests still in flight when wrk stopped have been stored."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last = count()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = count()
        if now == last:
            return now
        last = now
    return last


def _durability(result: WrkResult, stored: int, connections: int) -> dict[str, Any]:
    """Every 202 must be a stored row. A few more rows than 202s is expected: requests
    still in flight when wrk stopped were stored but their answers never counted."""
    return {
        "stored": stored,
        "durable": stored >= result.accepted,
        "stored_unanswered": stored - result.accepted,
        "stored_unanswered_plausible": 0 <= stored - result.accepted <= connections,
    }


def summarise(name: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [r for r in rounds if r["target"] == name]

    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in mine), 2)

    summary: dict[str, Any] = {
        "accepted_per_second": median("accepted_per_second"),
        "requests_per_second": median("requests_per_second"),
        "p50_ms": median("p50_ms"),
        "p90_ms": median("p90_ms"),
        "p99_ms": median("p99_ms"),
        "accepted_total": sum(r["accepted"] for r in mine),
        "non_2xx_3xx_total": sum(r["non_2xx_3xx"] for r in mine),
        "socket_errors_total": sum(r["socket_errors"] for r in mine),
        "rounds": len(mine),
        **cpu.medians(mine),
    }
    if mine and "durable" in mine[0]:
        summary["stored_total"] = sum(r["stored"] for r in mine)
        summary["ids_checked_total"] = sum(r.get("ids_answered", 0) for r in mine)
        summary["every_202_durable"] = all(
            r["durable"] and r.get("every_202_id_stored", False) for r in mine
        )
    return summary


def _ratios(summary: dict[str, dict[str, Any]]) -> dict[str, float]:
    bare = summary.get("bare", {}).get("accepted_per_second")
    if not bare:
        return {}
    return {
        f"{name}_over_bare": round(values["accepted_per_second"] / bare, 3)
        for name, values in summary.items()
        if name != "bare"
    }


def _paired_ratios(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """The median over rounds of relay / bare within the same round: the targets of one
    round run back to back, so load that drifts during the run cancels out."""
    by_round: dict[int, dict[str, float]] = {}
    for record in rounds:
        by_round.setdefault(record["round"], {})[record["target"]] = record["accepted_per_second"]
    ratios: dict[str, list[float]] = {}
    for values in by_round.values():
        bare = values.get("bare")
        for name, rate in values.items():
            if name != "bare" and bare:
                ratios.setdefault(f"{name}_over_bare", []).append(rate / bare)
    return {name: round(statistics.median(r), 3) for name, r in ratios.items()}


def _target_met(summary: dict[str, dict[str, Any]], name: str, target: float) -> bool:
    ratio = _ratios(summary).get(f"{name}_over_bare", 0.0)
    return ratio >= target and bool(summary.get(name, {}).get("every_202_durable"))


def _describe_round(record: dict[str, Any], rounds: int) -> str:
    line = (
        f"round {record['round']}/{rounds} {record['target']:<15} "
        f"{record['accepted_per_second']:>8.0f} accepted/s  p50 {record['p50_ms']:.1f} ms  "
        f"p99 {record['p99_ms']:.1f} ms  non-2xx {record['non_2xx_3xx']}"
    )
    if "durable" in record:
        ok = record["durable"] and record.get("every_202_id_stored", False)
        line += f"  stored {record['stored']} ({'every 202 id stored' if ok else 'LOST'})"
    return line


def all_durable(result: dict[str, Any]) -> bool:
    return all(
        r.get("durable", True) and r.get("every_202_id_stored", True) for r in result["rounds"]
    )
