"""WAL checkpoints under a steady stream of writes: the WAL is rewound and its file kept
near the limit, and the writer-blocking RESTART runs only when the WAL is full again."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest

from app.domain.events import Inserted
from app.store import sqlite_connect, sqlite_db
from app.store.sqlite_db import SQLiteDatabase
from tests.store.test_store_contract import make_event

LIMIT = 512 * 1024


def small_wal(monkeypatch: pytest.MonkeyPatch, *, file_limit: int = 2 * LIMIT) -> None:
    """Rewind the WAL past LIMIT, cut its file back past ``file_limit``, checkpoint often."""
    monkeypatch.setattr(sqlite_db, "WAL_RESTART_BYTES", LIMIT)
    monkeypatch.setattr(sqlite_connect, "WAL_FILE_LIMIT", file_limit)
    monkeypatch.setattr(sqlite_db, "CHECKPOINT_INTERVAL", 0.01)


async def burst(store: SQLiteDatabase) -> list[list[Inserted]]:
    """Eight webhooks at once (one group commit or two), then a breath for checkpoints."""
    inserted = await asyncio.gather(*(store.insert_events([make_event()]) for _ in range(8)))
    await asyncio.sleep(0.002)
    return inserted


async def test_restart_runs_when_the_wal_fills_not_every_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_wal(monkeypatch)
    store = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}")
    await store.open()
    wal = tmp_path / "relay.db-wal"
    largest = 0
    first_full: Counter[str] | None = None  # the counts when the WAL first filled
    try:
        for _ in range(400):  # several times the limit of WAL
            await burst(store)
            largest = max(largest, wal.stat().st_size)
            if first_full is None and store.checkpoints["RESTART"]:
                first_full = store.checkpoints.copy()
    finally:
        await store.close()
    assert first_full is not None, store.checkpoints  # the WAL filled
    since = store.checkpoints - first_full
    # Rewinding on the size of the file (its high-water mark) RESTARTed at every check
    # from then on; the frames in the WAL fill again only now and then.
    assert since["RESTART"] < since["PASSIVE"] * 0.6, since
    assert largest < 4 * LIMIT  # the file is cut back when the WAL is rewound
    assert not wal.exists() or wal.stat().st_size == 0  # TRUNCATE at close


async def test_the_writer_rewinds_the_wal_itself_between_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RESTART that rewinds the WAL runs on the writer's thread, between two batches.
    Run from the checkpointer, it held a commit in SQLite's busy handler, whose growing
    sleeps turned a 15 ms checkpoint into a 31 ms stall of every queued request."""
    small_wal(monkeypatch)
    runs: list[tuple[str, str]] = []
    checkpoint = SQLiteDatabase._checkpoint

    def recorded(self: SQLiteDatabase, conn: sqlite3.Connection, mode: str) -> int:
        runs.append((mode, threading.current_thread().name))
        return checkpoint(self, conn, mode)

    monkeypatch.setattr(SQLiteDatabase, "_checkpoint", recorded)
    store = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}")
    await store.open()
    stored = []
    try:
        for _ in range(200):
            stored += [inserted.id for result in await burst(store) for inserted in result]
        rows = await store.read(lambda c: c.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        await store.close()
    restarts = {thread for mode, thread in runs if mode == "RESTART"}
    assert restarts == {"relay-sqlite-writer"}, runs
    assert {thread for mode, thread in runs if mode == "PASSIVE"} == {"relay-sqlite-checkpoint"}
    assert rows == len(stored) == 1600  # nothing queued behind a rewind was dropped


async def test_a_rewound_wal_keeps_its_file_under_the_file_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewinding the WAL does not cut its file back while it is under WAL_FILE_LIMIT:
    cutting it to WAL_RESTART_BYTES at every rewind cost the next commit ~12 ms."""
    small_wal(monkeypatch, file_limit=64 * LIMIT)
    store = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}")
    await store.open()
    wal = tmp_path / "relay.db-wal"
    sizes = []
    try:
        for _ in range(2000):
            await burst(store)
            sizes.append(wal.stat().st_size)
            if store.checkpoints["RESTART"] >= 3:  # rewound three times over
                break
    finally:
        await store.close()
    assert store.checkpoints["RESTART"] >= 3, store.checkpoints
    assert max(sizes) > LIMIT
    assert sizes == sorted(sizes)  # never cut back
