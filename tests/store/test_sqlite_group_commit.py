"""The SQLite writer's group commit, batch by batch: a batch of new webhooks is one
autocommitted statement; a duplicate or a failure sends it down the transactional path,
and every request still hears the truth about its own events."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.store.factory import open_store
from app.store.queries import events as event_sql
from app.store.sqlite_commit import InsertJob, commit_batch
from app.store.sqlite_connect import connect as _connect
from app.store.store import SQLStore
from tests.store.test_store_contract import make_event


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    await store.open()
    yield store
    await store.close()


def _commit(conn: sqlite3.Connection, requests: list[Any]) -> bool:
    """Commit ``(events, rows, future)`` insert requests as the writer thread does."""
    batch = [(InsertJob(events, rows), f, f.get_loop()) for events, rows, f in requests]
    return commit_batch(conn, batch)


def _requests(*event_lists: list[Any]) -> list[Any]:
    loop = asyncio.get_running_loop()
    return [
        (events, [event_sql.event_row(e) for e in events], loop.create_future())
        for events in event_lists
    ]


async def _run(store: SQLStore, requests: list[Any]) -> tuple[bool, list[Any]]:
    conn = _connect(store.db.path)
    try:
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        ok = _commit(conn, requests)
        outcomes = await asyncio.gather(*(f for _, _, f in requests), return_exceptions=True)
        return ok, [statements, *outcomes]
    finally:
        conn.close()


async def test_a_batch_of_new_webhooks_is_one_statement(sqlite_store: SQLStore) -> None:
    """Here the count of statements is the point: every statement is a release and
    retake of the GIL the event loop is waiting for (docs/performance.md)."""
    requests = _requests(*([make_event()] for _ in range(5)))
    ok, (statements, *outcomes) = await _run(sqlite_store, requests)
    assert ok
    assert len(statements) == 1
    assert statements[0].startswith("INSERT INTO events")
    for (events, _, _), inserted in zip(requests, outcomes, strict=True):
        assert [(i.id, i.created) for i in inserted] == [(events[0].id, True)]
        assert await sqlite_store.get_event(events[0].id) is not None


async def test_a_duplicate_in_the_batch_is_named_and_its_neighbours_created(
    sqlite_store: SQLStore,
) -> None:
    """The one statement stores the new rows and skips the duplicate: each request must
    still hear which of its events are new and which event a duplicate repeats."""
    first = make_event(dedupe_key="seen")
    await sqlite_store.insert_events([first])
    again = make_event(dedupe_key="seen")
    fresh = [make_event() for _ in range(3)]
    requests = _requests([fresh[0]], [again], [fresh[1], fresh[2]])
    ok, (_, *outcomes) = await _run(sqlite_store, requests)
    assert ok
    assert [(i.id, i.created) for i in outcomes[0]] == [(fresh[0].id, True)]
    assert [(i.id, i.created) for i in outcomes[1]] == [(first.id, False)]
    assert [(i.id, i.created) for i in outcomes[2]] == [(e.id, True) for e in fresh[1:]]
    assert await sqlite_store.get_event(again.id) is None
    for event in fresh:
        assert await sqlite_store.get_event(event.id) is not None


async def test_a_failed_batch_stores_nothing_and_says_so(sqlite_store: SQLStore) -> None:
    requests = _requests([make_event()], [make_event()])
    blocker = sqlite3.connect(sqlite_store.db.path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # the database is locked: every write fails
    conn = _connect(sqlite_store.db.path)
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        ok = _commit(conn, requests)
        outcomes = await asyncio.gather(*(f for _, _, f in requests), return_exceptions=True)
    finally:
        blocker.rollback()
        blocker.close()
        conn.close()
    assert not ok
    assert all(type(o).__name__ == "StoreUnavailable" for o in outcomes)
    for events, _, _ in requests:
        assert await sqlite_store.get_event(events[0].id) is None
