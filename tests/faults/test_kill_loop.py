"""kill -9 of ``relay serve`` (API and worker in one process) in a loop while webhooks
stream in and deliveries are in flight — each kill waits for a moment when an action set
call is in flight at the fake and a webhook is waiting for its answer: afterwards every
acknowledged event is delivered, no action set has run twice, the ones cut off are
outcome_unknown, and nothing is left claimed or half-sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from app.domain.events import EventRecord
from app.store.factory import open_store
from app.store.sqlite_connect import sqlite_path
from fake_keap.server import FakeKeapServer
from fake_keap.state import FakeKeapState
from tests.delivery.conftest import API_KEY
from tests.faults.conftest import FAULT_YAML, assert_delivered_once, order, post_order
from tests.faults.conftest import wait_all_finished as wait_finished
from tests.support.processes import free_port, keap_env, relay_env, start_relay, stop

CYCLES = 4
POSTERS = 3  # concurrent senders
POST_INTERVAL = 0.05  # seconds between one sender's posts: ~60 webhooks/s in all
MAX_EVENTS_PER_CYCLE = 1000  # order numbers per cycle: senders post until the kill


@dataclass
class Kill:
    """What was in flight when one relay was killed."""

    acknowledged: list[str] = field(default_factory=list)
    keap_calls: Counter[str] = field(default_factory=Counter)  # by operation, at the fake
    # Still in flight once the relay was dead: their answers can reach no one.
    keap_calls_cut_off: Counter[str] = field(default_factory=Counter)
    posts_outstanding: int = 0  # webhooks sent and not yet answered
    posts_cut_off: int = 0  # of those, how many never got an answer


async def _stream_until_killed(
    process: subprocess.Popen[bytes],
    port: int,
    cycle: int,
    kill_after: float,
    fake: FakeKeapState,
) -> Kill:
    """Post orders from several senders; kill -9 the relay mid-stream, at a moment when an
    action set call is in flight at the fake and a webhook is waiting for its answer."""
    kill = Kill()
    outstanding = 0
    killed = asyncio.Event()
    numbers = iter(range(cycle * MAX_EVENTS_PER_CYCLE, (cycle + 1) * MAX_EVENTS_PER_CYCLE))

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal outstanding
        for i in numbers:
            if killed.is_set():
                return
            outstanding += 1
            try:
                response = await post_order(client, order(i))
            except httpx.HTTPError:
                kill.posts_cut_off += 1  # cut off by the kill: never acknowledged
                return
            finally:
                outstanding -= 1
            if response.status_code == 202:
                kill.acknowledged.append(response.json()["event_id"])
            await asyncio.sleep(POST_INTERVAL)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        senders = [asyncio.create_task(sender(client)) for _ in range(POSTERS)]
        await asyncio.sleep(kill_after)
        deadline = time.monotonic() + 10
        while not (fake.in_flight()["action_set.run"] and outstanding):
            assert time.monotonic() < deadline, (
                "no moment with an action set call in flight and a webhook outstanding"
            )
            await asyncio.sleep(0.002)
        kill.keap_calls, kill.posts_outstanding = fake.in_flight(), outstanding
        process.send_signal(signal.SIGKILL)
        process.wait()
        kill.keap_calls_cut_off = fake.in_flight()
        killed.set()
        await asyncio.gather(*senders)
    process.wait()
    return kill


def _leftovers(database_url: str) -> tuple[list[str], list[str]]:
    """(events still claimed, events with a step still "sending")."""
    query = "SELECT id, claimed_by, steps FROM events"
    if database_url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(sqlite_path(database_url))) as conn:
            rows = conn.execute(query).fetchall()
    else:
        with psycopg.connect(database_url) as pg:
            rows = [(r[0], r[1], r[2]) for r in pg.execute(query).fetchall()]
    claimed = [event_id for event_id, claimed_by, _ in rows if claimed_by is not None]
    sending = [
        event_id
        for event_id, _, steps in rows
        if any(step["status"] == "sending" for step in _steps(steps))
    ]
    return claimed, sending


def _action_set_outcome_unknown(record: EventRecord) -> bool:
    step = next(s for s in record.steps if s.action == "action_set")
    return step.status == "done" and "outcome_unknown" in (step.result or {})


def _steps(column: Any) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(column) if isinstance(column, str) else column
    return steps


async def test_kill_9_in_a_loop_loses_nothing_and_repeats_no_action_set(
    tmp_path: Path,
    database_url: str,  # SQLite, then PostgreSQL (tests/conftest.py)
) -> None:
    kills: list[Kill] = []
    # 60 ms per call: there are always calls in flight to kill the relay in the middle of.
    with FakeKeapServer(valid_keys={API_KEY}, latency_ms=60) as fake:
        env = relay_env(
            tmp_path,
            database_url,
            FAULT_YAML,
            {
                **keap_env(fake, API_KEY),
                "RELAY_CLAIM_LEASE_SECONDS": "1.5",
                "RELAY_RETRY_BASE_SECONDS": "0.2",
                "RELAY_KEAP_RATE_PER_SECOND": "200",
                "RELAY_KEAP_RATE_PER_MINUTE": "100000",
            },
        )
        for cycle in range(CYCLES):
            port = free_port()
            process = start_relay(
                ["serve", "--port", str(port)], env, tmp_path, port, log_name=f"relay-{cycle}.log"
            )
            try:
                kill_after = 0.6 + 0.25 * cycle  # a different moment of the stream each time
                kills.append(
                    await _stream_until_killed(process, port, cycle, kill_after, fake.state)
                )
            finally:
                stop(process)
        acknowledged = [event_id for kill in kills for event_id in kill.acknowledged]
        assert len(acknowledged) >= CYCLES * 10, "too few webhooks got in to prove anything"
        # Each kill landed mid-work: Keap calls and webhooks in flight (checked before the
        # kill), and some webhooks did lose their answer to it.
        assert all(kill.keap_calls["action_set.run"] >= 1 for kill in kills)
        assert all(kill.posts_outstanding >= 1 for kill in kills)
        assert sum(kill.posts_cut_off for kill in kills) >= 1

        # A last start drains what the killed ones left (their claims expire first).
        port = free_port()
        final = start_relay(["serve", "--port", str(port)], env, tmp_path, port, "relay-final.log")
        store = open_store(database_url)
        await store.open()
        try:
            records = await wait_finished(store, acknowledged, within=40)
        finally:
            await store.close()
            stop(final)
        assert_delivered_once(records, fake.state)
    # Every action set call cut off by a kill was left "sending" and is now outcome_unknown:
    # not repeated, whatever the fake did with it.
    cut_off = sum(kill.keap_calls_cut_off["action_set.run"] for kill in kills)
    assert cut_off >= 1
    unknown = [r.id for r in records if _action_set_outcome_unknown(r)]
    assert len(unknown) >= cut_off

    claimed, sending = _leftovers(database_url)
    assert claimed == [], "events left claimed after the drain"
    assert sending == [], "steps left 'sending' after the drain"
