"""The SQLite ingest writer process (app/store/sqlite_ingest.py): ``relay serve`` commits
webhooks there; whatever it cannot store, and everything while it is down, goes to the
writer thread, so no webhook is lost or stored twice when the process dies at any point."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.domain.events import Inserted
from app.store import sqlite_db, sqlite_ingest
from app.store.queries import events as event_sql
from app.store.sqlite_db import SQLiteDatabase
from tests.store.test_sqlite_checkpoints import LIMIT, burst, small_wal
from tests.store.test_store_contract import make_event
from tests.test_ingest_http import ORDER, shopify_headers

ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def post_order(relay: httpx.AsyncClient, webhook_id: str) -> httpx.Response:
    body = json.dumps({**ORDER, "id": webhook_id}).encode()
    return await relay.post(
        "/hooks/shop", content=body, headers=shopify_headers(body, webhook_id=webhook_id)
    )


def child_pid(db: SQLiteDatabase) -> int:
    assert db.ingest is not None
    assert db.ingest.alive
    transport = db.ingest._transport
    assert transport is not None
    return int(transport.get_pid())


async def writer_up(relay: httpx.AsyncClient) -> float:
    """``relay_sqlite_ingest_writer_up`` as /metrics shows it."""
    metrics = (await relay.get("/metrics")).text
    found = re.search(r"^relay_sqlite_ingest_writer_up (\S+)$", metrics, re.M)
    assert found is not None, metrics
    return float(found.group(1))


def count_thread_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of each batch the writer thread commits."""
    batches: list[int] = []
    original = sqlite_db.commit_batch

    def counted(conn: sqlite3.Connection, batch: list[Any]) -> bool:
        batches.append(len(batch))
        return original(conn, batch)

    monkeypatch.setattr(sqlite_db, "commit_batch", counted)
    return batches


async def stored_ids(db: SQLiteDatabase) -> list[str]:
    return await db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM events")])


@ON_SQLITE
async def test_relay_serve_commits_webhooks_in_the_ingest_process(
    relay: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = relay.app.state.store  # type: ignore[attr-defined]
    assert await writer_up(relay) == 1.0
    batches = count_thread_batches(monkeypatch)
    answers = await asyncio.gather(*(post_order(relay, f"wh-proc-{i}") for i in range(20)))
    assert [a.status_code for a in answers] == [202] * 20
    assert sorted(await stored_ids(store.db)) == sorted(a.json()["event_id"] for a in answers)
    assert batches == []  # none went through the writer thread
    again = await post_order(relay, "wh-proc-3")  # a retry: the thread finds the first
    assert again.status_code == 200
    assert again.json()["event_id"] == answers[3].json()["event_id"]
    assert batches == [1]


@ON_SQLITE
async def test_killing_the_ingest_process_under_load_loses_and_repeats_nothing(
    relay: httpx.AsyncClient,
) -> None:
    """SIGKILL mid-stream: every request is still answered 202, each with a row of its
    own, and the process is started again."""
    store = relay.app.state.store  # type: ignore[attr-defined]
    first = child_pid(store.db)
    sent = [asyncio.create_task(post_order(relay, f"wh-kill-{i}")) for i in range(300)]
    await asyncio.sleep(0.05)
    os.kill(first, signal.SIGKILL)
    answers = await asyncio.wait_for(asyncio.gather(*sent), timeout=30)
    assert [a.status_code for a in answers] == [202] * 300
    ids = [a.json()["event_id"] for a in answers]
    assert sorted(await stored_ids(store.db)) == sorted(ids)
    for _ in range(200):  # the next webhook after the pause starts a new process
        if (await post_order(relay, "wh-after")).status_code in (200, 202) and (
            store.db.ingest.alive
        ):
            break
        await asyncio.sleep(0.02)
    assert child_pid(store.db) != first
    assert store.db.ingest.starts == 2
    assert await writer_up(relay) == 1.0
    assert (await post_order(relay, "wh-after-restart")).status_code == 202


@ON_SQLITE
async def test_the_metric_says_when_the_writer_process_is_down(relay: httpx.AsyncClient) -> None:
    store = relay.app.state.store  # type: ignore[attr-defined]
    os.kill(child_pid(store.db), signal.SIGKILL)
    for _ in range(250):
        if not store.db.ingest.alive:
            break
        await asyncio.sleep(0.02)
    assert await writer_up(relay) == 0.0  # no webhook since: none started it again
    await asyncio.sleep(sqlite_ingest.RESTART_SECONDS)
    assert (await post_order(relay, "wh-starts-it")).status_code == 202  # (by the thread)
    for _ in range(250):
        if store.db.ingest.alive:
            break
        await asyncio.sleep(0.02)
    assert await writer_up(relay) == 1.0


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_on_postgresql_there_is_no_writer_process(relay: httpx.AsyncClient) -> None:
    assert math.isnan(await writer_up(relay))


@ON_SQLITE
async def test_rows_the_process_stored_before_dying_unanswered_count_as_created(
    relay: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst moment: the rows are committed, the answer never leaves the process. The
    writer thread then finds them under the request's own ids: 202, one row, not a 200
    "duplicate" of itself."""
    store = relay.app.state.store  # type: ignore[attr-defined]
    ingest = store.db.ingest
    handed: list[list[tuple[Any, ...]]] = []
    submit = ingest.submit

    def recorded(rows: list[tuple[Any, ...]]) -> asyncio.Future[bool] | None:
        handed.append(rows)
        return submit(rows)

    monkeypatch.setattr(ingest, "submit", recorded)
    pid = child_pid(store.db)
    os.kill(pid, signal.SIGSTOP)
    try:
        answer = asyncio.create_task(post_order(relay, "wh-unanswered"))
        for _ in range(100):
            if handed:
                break
            await asyncio.sleep(0.01)
        assert len(handed) == 1
        assert not answer.done()
        # What the stopped process would have committed, committed as it would have.
        conn = sqlite3.connect(store.db.path, isolation_level=None)
        conn.execute(event_sql.insert_sql(1, "?"), handed[0][0])
        conn.close()
    finally:
        os.kill(pid, signal.SIGKILL)
    response = await asyncio.wait_for(answer, timeout=10)
    assert response.status_code == 202
    assert await stored_ids(store.db) == [response.json()["event_id"]]


async def test_a_replaced_process_has_no_say_over_its_successor(tmp_path: Path) -> None:
    """What the old child's pipes report after a new child started (its exit, reaped
    late) leaves the new one running and taking webhooks."""
    db = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}", ingest_process=True)
    await db.open()
    try:
        ingest = db.ingest
        assert ingest is not None
        old = ingest._transport
        assert old is not None
        old_protocol = old.get_protocol()
        os.kill(old.get_pid(), signal.SIGKILL)
        for _ in range(250):
            if not ingest.alive:
                break
            await asyncio.sleep(0.02)
        assert not ingest.alive
        await ingest._start_again()
        assert ingest.alive
        old_protocol.pipe_connection_lost(1, None)  # as if reported late
        old_protocol.process_exited()
        old_protocol.pipe_data_received(1, b"\x00\x00\x00\x05junk")
        assert ingest.alive
        stored = ingest.submit([event_sql.event_row(make_event())])
        assert stored is not None
        assert await stored
    finally:
        await db.close()


async def test_closing_answers_every_request_the_process_holds(tmp_path: Path) -> None:
    db = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}", ingest_process=True)
    await db.open()
    assert db.ingest is not None
    assert db.ingest.alive
    pending = [asyncio.create_task(db.insert_events([make_event()])) for _ in range(50)]
    await asyncio.sleep(0)  # handed over, not yet answered
    await db.close()
    results: list[list[Inserted]] = await asyncio.gather(*pending)
    assert all(r[0].created for r in results)
    reopened = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}")
    await reopened.open()
    try:
        assert sorted(await stored_ids(reopened)) == sorted(r[0].id for r in results)
    finally:
        await reopened.close()
    assert db.ingest._transport.get_returncode() == 0


async def test_an_ingest_process_that_would_not_be_durable_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Its connection must report WAL and synchronous=FULL, like the writer's; else the
    writer thread takes the webhooks."""
    durable = sqlite_db.writer_settings()
    monkeypatch.setattr(
        sqlite_db,
        "writer_settings",
        lambda: [s.replace("synchronous = FULL", "synchronous = NORMAL") for s in durable],
    )
    db = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}", ingest_process=True)
    await db.open()
    try:
        assert db.ingest is None
        assert "not durable" in caplog.text
        assert (await db.insert_events([make_event()]))[0].created
        await db.ping()
    finally:
        await db.close()


async def test_the_ingest_process_rewinds_the_wal_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With webhooks committed by the process, the RESTART that rewinds the WAL runs there
    between two of its commits, not on the writer thread (whose RESTART would hold the
    process's commits in SQLite's busy handler)."""
    small_wal(monkeypatch)
    threads: list[str] = []
    checkpoint = SQLiteDatabase._checkpoint

    def recorded(self: SQLiteDatabase, conn: sqlite3.Connection, mode: str) -> int:
        serving = self.ingest is not None and self.ingest.alive  # (not once it is stopping)
        threads.append(f"{mode} {threading.current_thread().name} {serving}")
        return checkpoint(self, conn, mode)

    monkeypatch.setattr(SQLiteDatabase, "_checkpoint", recorded)
    db = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}", ingest_process=True)
    await db.open()
    wal = tmp_path / "relay.db-wal"
    largest, stored = 0, []
    try:
        for _ in range(300):
            stored += [inserted.id for result in await burst(db) for inserted in result]
            largest = max(largest, wal.stat().st_size)
    finally:
        await db.close()
    assert db.checkpoints["RESTART"] >= 2, db.checkpoints
    assert not [t for t in threads if t.startswith("RESTART") and t.endswith("True")], threads
    assert largest < 4 * LIMIT
    reopened = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}")
    await reopened.open()
    try:
        assert sorted(await stored_ids(reopened)) == sorted(stored)
    finally:
        await reopened.close()
