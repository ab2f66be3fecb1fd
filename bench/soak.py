"""``python -m bench soak [--minutes 10] [--out bench/results]``: a steady stream of
webhooks into two relay replicas (``relay serve``, API and worker) sharing a PostgreSQL of
the soak's own, while faults come one after another: a replica killed (-9) and restarted,
PostgreSQL crashed (immediate stop) and restarted, and the fake Infusionsoft answering an
outage, a 429 storm, 502/504 after carrying out an action set, email or goal, and dropped
connections. Then the faults stop, the queue drains and ``soak_audit`` checks the promises.

Writes ``soak.json`` and ``soak.md`` to the output folder. Exit status: 0 when the audit
passed, 1 when it did not, 2 when the soak cannot run here (no PostgreSQL binaries).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import servers
from bench.soak_audit import audit, read_events
from devkit.cart import cart_yaml, headers, order
from devkit.pgcluster import ThrowawayPostgres, unavailable_reason

DEFAULT_OUT = Path("bench/results")
API_KEY = "soak-key"
# The fault tests' cart (tests/faults/), whose route also sends an email and achieves a goal.
SOAK_YAML = cart_yaml("email_template: 55", "goal: {integration: shop, call_name: purchase}")
FAULTS = (
    "kill_replica",
    "outage",
    "after_apply_failure",
    "restart_postgres",
    "storm_429",
    "dropped_connections",
)
Log = Callable[[str], None]


@dataclass(frozen=True)
class SoakPlan:
    seconds: float
    rate: float = 6.0  # webhooks per second, steady
    latency_ms: float = 40.0  # the fake's answer time
    replica_down_seconds: float = 2.0
    postgres_down_seconds: float = 1.0
    drain_seconds: float = 300.0

    @property
    def fault_interval(self) -> float:
        """Every fault at least once in the run, and never more than 20 s without one."""
        return min(20.0, self.seconds / (len(FAULTS) + 1))


class Replica:
    """One ``relay serve`` on its own port; restarted by the soak (as a supervisor would)."""

    def __init__(self, name: str, port: int, env: dict[str, str], log: Path) -> None:
        self.name, self.port, self.env, self.log = name, port, env, log
        self.process: servers.Process | None = None
        self.planned_down = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port)]
        process = servers.spawn(f"relay {self.name}", argv, self.env, self.log)
        process.url = self.url
        servers.wait_healthy(process)
        self.process = process

    def kill(self) -> None:
        if self.process is not None and self.process.popen.poll() is None:
            self.process.popen.send_signal(signal.SIGKILL)
            self.process.popen.wait()

    def exited(self) -> bool:
        return self.process is not None and self.process.popen.poll() is not None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class Soak:
    def __init__(self, plan: SoakPlan, pg: ThrowawayPostgres, fake_url: str, log: Log) -> None:
        self.plan, self.pg, self.fake_url, self.log = plan, pg, fake_url, log
        self.replicas: list[Replica] = []
        self.faults: Counter[str] = Counter()
        self.webhooks: Counter[str] = Counter()
        self.acknowledged: list[str] = []
        self.unexpected_exits: list[str] = []
        self.drained_in: float | None = None  # seconds from the end of the load
        self.posts_in_flight = 0
        self.at_kills: Counter[str] = Counter()  # what was in flight when replicas died

    # the load ------------------------------------------------------------------------
    async def post_steadily(self, until: float) -> None:
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=5) as client:
            number = 0
            while time.monotonic() < until:
                number += 1
                task = asyncio.create_task(self._post(client, number))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(1 / self.plan.rate)
            await asyncio.gather(*tasks)

    async def _post(self, client: httpx.AsyncClient, number: int) -> None:
        """Like a sender behind a load balancer: one replica, then the other."""
        body = order(number, prefix="soak")
        self.webhooks["sent"] += 1
        first = number % len(self.replicas)
        outcome = "no answer"
        for replica in self.replicas[first:] + self.replicas[:first]:
            self.posts_in_flight += 1
            try:
                response = await client.post(
                    f"{replica.url}/hooks/cart", json=body, headers=headers()
                )
            except httpx.HTTPError as exc:
                outcome = f"cut off ({type(exc).__name__})"
                continue
            finally:
                self.posts_in_flight -= 1
            if response.status_code in (200, 202):  # 200: a duplicate of a stored event
                self.acknowledged.append(response.json()["event_id"])
                self.webhooks["acknowledged" if response.status_code == 202 else "duplicate"] += 1
                return
            outcome = f"HTTP {response.status_code}"
        self.webhooks[f"not acknowledged: {outcome}"] += 1

    # the faults ----------------------------------------------------------------------
    async def inject_faults(self, until: float, control: httpx.AsyncClient) -> None:
        """The faults in turn, the n-th due n intervals after the start (at once when the
        one before ran late), until the load stops."""
        start = time.monotonic()
        for turn in range(10**6):
            due = start + (turn + 1) * self.plan.fault_interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if time.monotonic() >= until:
                return
            fault = FAULTS[turn % len(FAULTS)]
            self.log(f"soak: {fault}")
            await getattr(self, f"_{fault}")(control, turn)
            self.faults[fault] += 1

    async def _kill_replica(self, control: httpx.AsyncClient, turn: int) -> None:
        replica = self.replicas[self.faults["kill_replica"] % len(self.replicas)]
        replica.planned_down = True
        calls = await self._wait_for_work_in_flight(control)
        self.at_kills["keap_calls_in_flight"] += calls
        self.at_kills["webhooks_in_flight"] += self.posts_in_flight
        replica.kill()
        await asyncio.sleep(self.plan.replica_down_seconds)
        await asyncio.to_thread(replica.start)
        replica.planned_down = False

    async def _wait_for_work_in_flight(self, control: httpx.AsyncClient) -> int:
        """Wait (up to 5 s) for a moment when calls are in flight at the fake and webhooks
        are waiting for their answers, so the kill lands mid-work; the calls then."""
        deadline = time.monotonic() + 5.0
        while True:
            calls = sum((await control.get("/_fake/in_flight")).json()["in_flight"].values())
            if (calls and self.posts_in_flight) or time.monotonic() > deadline:
                return int(calls)
            await asyncio.sleep(0.01)

    async def _restart_postgres(self, control: httpx.AsyncClient, turn: int) -> None:
        await asyncio.to_thread(self.pg.restart, self.plan.postgres_down_seconds)

    async def _outage(self, control: httpx.AsyncClient, turn: int) -> None:
        await _configure(control, {"outage": {"status": 503, "seconds": 3.0}})

    async def _storm_429(self, control: httpx.AsyncClient, turn: int) -> None:
        await _configure(control, {"fail_next": {"status": 429, "count": 30}})

    async def _after_apply_failure(self, control: httpx.AsyncClient, turn: int) -> None:
        """Keap carries the call out; its gateway answers 502 or 504 instead."""
        status = (502, 504)[self.faults["after_apply_failure"] % 2]  # in turn
        failures = [
            {"status": status, "operation": operation, "after_handling": True}
            for operation in ("action_set.run", "email_template.send", "goal.achieve")
        ]
        await _configure(control, {"fail_next": failures})

    async def _dropped_connections(self, control: httpx.AsyncClient, turn: int) -> None:
        """Connections cut before a call is handled, and one after an action set ran."""
        failures = [
            {"status": "drop", "count": 3},
            {"status": "drop", "operation": "action_set.run", "after_handling": True},
        ]
        await _configure(control, {"fail_next": failures})

    async def supervise(self, until: float) -> None:
        """Restart a replica that exited unplanned (and say so in the results)."""
        while time.monotonic() < until:
            for replica in self.replicas:
                if replica.exited() and not replica.planned_down:
                    self.unexpected_exits.append(f"{replica.name}: {replica.log.name}")
                    self.log(f"soak: {replica.name} exited unplanned; restarting it")
                    with contextlib.suppress(RuntimeError):
                        await asyncio.to_thread(replica.start)
            await asyncio.sleep(0.5)

    # the end -------------------------------------------------------------------------
    async def drain(self) -> tuple[bool, dict[str, int]]:
        start = time.monotonic()
        deadline = start + self.plan.drain_seconds
        while True:
            counts = await asyncio.to_thread(_statuses, self.pg.url)
            if counts.get("pending", 0) == 0:
                self.drained_in = time.monotonic() - start
                return True, counts
            if time.monotonic() > deadline:
                return False, counts
            await asyncio.sleep(1.0)


async def _configure(control: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await control.post("/_fake/config", json=body)
    response.raise_for_status()


def _statuses(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


def run_soak(plan: SoakPlan, workdir: Path, log: Log) -> dict[str, Any]:
    """Run the soak; the results (the audit included) as JSON-ready data."""
    with ThrowawayPostgres(servers.free_port()) as pg:
        fake = servers.start_fake_keap(
            servers.free_port(),
            workdir / "fake-keap.log",
            api_key=API_KEY,
            per_second=10_000,
            per_minute=1_000_000,
            latency_ms=plan.latency_ms,
        )
        try:
            return asyncio.run(_soak(plan, pg, fake, workdir, log))
        finally:
            fake.stop()


async def _soak(
    plan: SoakPlan, pg: ThrowawayPostgres, fake: servers.Process, workdir: Path, log: Log
) -> dict[str, Any]:
    config = workdir / "relay.yaml"
    config.write_text(SOAK_YAML)
    env = servers.relay_env(pg.url, config, _relay_settings(str(fake.url)))
    soak = Soak(plan, pg, str(fake.url), log)
    soak.replicas = [
        Replica(name, servers.free_port(), env, workdir / f"relay-{name}.log") for name in "ab"
    ]
    started = time.time()
    try:
        for replica in soak.replicas:
            await asyncio.to_thread(replica.start)
        async with httpx.AsyncClient(base_url=str(fake.url), timeout=30) as control:
            until = time.monotonic() + plan.seconds
            await asyncio.gather(
                soak.post_steadily(until), soak.inject_faults(until, control), soak.supervise(until)
            )
            log("soak: faults over; draining")
            await _configure(control, {"clear_faults": True})
            drained, statuses = await soak.drain()
            fake_state = (await control.get("/_fake/state")).json()
        events = await asyncio.to_thread(read_events, pg.url)
        durability = await asyncio.to_thread(pg.settings)
    finally:
        for replica in soak.replicas:
            replica.stop()
    result = audit(events, soak.acknowledged, fake_state)
    if not drained:
        result.checks[
            "every_event_delivered_or_dead_with_reason"
        ].detail += f" (the queue did not drain in {plan.drain_seconds:g} s: {statuses})"
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "minutes": round(plan.seconds / 60, 2),
        "plan": {**vars(plan), "fault_interval": round(plan.fault_interval, 2)},
        "postgres": durability,
        "faults": {**dict(soak.faults), "postgres_restarts": pg.restarts},
        "in_flight_at_kills": dict(soak.at_kills),
        "unexpected_replica_exits": soak.unexpected_exits,
        "drained_in_seconds": None if soak.drained_in is None else round(soak.drained_in, 1),
        "fake_answers": _fake_answers(fake_state),
        "webhooks": dict(soak.webhooks),
        "outcomes": result.outcomes,
        "audit": result.as_json(),
    }


def _relay_settings(fake_url: str) -> dict[str, str]:
    return {
        "RELAY_KEAP_API_KEY": API_KEY,
        "RELAY_KEAP_BASE_URL": f"{fake_url}/crm",
        "RELAY_KEAP_TOKEN_URL": f"{fake_url}/token",
        "RELAY_CLAIM_LEASE_SECONDS": "3",
        "RELAY_RETRY_BASE_SECONDS": "0.3",
        "RELAY_KEAP_RATE_PER_SECOND": "200",
        "RELAY_KEAP_RATE_PER_MINUTE": "100000",
        "RELAY_DATABASE_POOL_SIZE": "4",
    }


def _fake_answers(state: dict[str, Any]) -> dict[str, int]:
    """How the fake answered every /crm call: by status, "dropped" for a cut connection."""
    counts = Counter(
        "dropped" if r["status"] == 0 else str(r["status"])
        for r in state["requests"]
        if r["operation"] != "oauth.refresh"
    )
    return dict(sorted(counts.items()))


def write_results(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "soak.md").write_text(render_markdown(results))


def render_markdown(results: dict[str, Any]) -> str:
    audit_, pg = results["audit"], results["postgres"]
    lines = [
        "# Soak",
        "",
        f"`{results.get('command', 'python -m bench soak')}` — started {results['started_at']}, "
        f"{results['minutes']:g} minutes of webhooks at {results['plan']['rate']:g}/s into two "
        "relay replicas on PostgreSQL "
        f"({pg.get('server_version', '?')}, fsync={pg.get('fsync')}, "
        f"synchronous_commit={pg.get('synchronous_commit')}), "
        f"a fault every {results['plan']['fault_interval']:g} s.",
        "",
        f"**Audit: {'passed' if audit_['passed'] else 'FAILED'}**",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    for name, check in audit_["checks"].items():
        mark = "pass" if check["passed"] else "FAIL"
        examples = f" e.g. {', '.join(check['examples'])}" if check["examples"] else ""
        lines.append(f"| {name.replace('_', ' ')} | {mark} | {check['detail']}{examples} |")
    lines += ["", "| faults injected | count |", "|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {n} |" for name, n in results["faults"].items()]
    lines.append(f"| unplanned replica exits | {len(results['unexpected_replica_exits'])} |")
    at_kills = results["in_flight_at_kills"]
    lines += [
        "",
        f"When the replicas were killed, {at_kills.get('keap_calls_in_flight', 0)} calls were "
        f"in flight at the fake Infusionsoft (from either replica) and "
        f"{at_kills.get('webhooks_in_flight', 0)} webhooks were waiting for an answer, in all.",
    ]
    lines += ["", f"The queue drained {results['drained_in_seconds']} s after the load stopped."]
    lines += ["", "| the fake answered /crm calls | count |", "|---|---|"]
    lines += [f"| {status} | {n} |" for status, n in results["fake_answers"].items()]
    lines += ["", "| webhooks | count |", "|---|---|"]
    lines += [f"| {name} | {n} |" for name, n in results["webhooks"].items()]
    outcomes = results["outcomes"]
    lines += ["", "| outcome | count |", "|---|---|"]
    lines += [f"| events {status} | {n} |" for status, n in outcomes["events"].items()]
    for key in ("runs", "outcome_unknown", "outcome_unknown_that_ran"):
        lines += [f"| {key.replace('_', ' ')}: {a} | {n} |" for a, n in outcomes[key].items()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    reason = unavailable_reason()
    if reason is not None:
        print(f"the soak needs a PostgreSQL of its own: {reason}", file=sys.stderr)
        return 2
    plan = SoakPlan(seconds=args.minutes * 60)
    with tempfile.TemporaryDirectory(prefix="relay-soak-") as tmp:
        results = run_soak(plan, Path(tmp), _log)
    results["command"] = "python -m bench soak" + "".join(f" {shlex.quote(a)}" for a in argv)
    write_results(args.out, results)
    print((args.out / "soak.md").read_text())
    return 0 if results["audit"]["passed"] else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="how long the webhooks stream (default 10)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT})"
    )
    return parser


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
