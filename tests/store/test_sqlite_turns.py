"""The relay's SQLite writers take turns on ``<database>-turn`` (app/store/sqlite_turns.py):
a writer that finds another mid-commit is woken when that one is done, instead of sleeping
in SQLite's busy handler; each holds its turn only for its commit; and without the lock
file they still write, kept apart by SQLite's busy handler as before."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.config.models import RelayConfig
from app.store.sqlite_db import SQLiteDatabase
from app.store.sqlite_turns import turn_path
from tests.conftest import api_relay
from tests.store.test_sqlite_ingest_process import (
    ON_SQLITE,
    child_pid,
    count_thread_batches,
    post_order,
    stored_ids,
)

WAITED = 0.3  # seconds a writer is seen waiting for its turn


@contextlib.contextmanager
def another_writers_turn(database: Path) -> Iterator[None]:
    """Hold the turn, as a relay writer mid-commit in another process would."""
    fd = os.open(turn_path(database), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nobody writes now
        yield
    finally:
        os.close(fd)  # lets go of the lock


def turn_taken(database: Path) -> bool:
    fd = os.open(turn_path(database), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


async def until(condition: Callable[[], bool]) -> bool:
    for _ in range(500):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return False


async def a_webhook_waits_its_turn(relay: httpx.AsyncClient, db: SQLiteDatabase) -> None:
    with another_writers_turn(db.path):
        sent = asyncio.create_task(post_order(relay, "wh-turn"))
        await asyncio.sleep(WAITED)
        assert not sent.done()
        assert await stored_ids(db) == []  # readers take no turn
    answer = await asyncio.wait_for(sent, timeout=10)
    assert answer.status_code == 202, answer.text
    assert await stored_ids(db) == [answer.json()["event_id"]]
    with another_writers_turn(db.path):  # the writer let go once it had committed
        pass


@ON_SQLITE
async def test_the_ingest_process_commits_in_its_turn(
    relay: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = relay.app.state.store.db  # type: ignore[attr-defined]
    assert db.ingest is not None
    assert db.ingest.alive
    batches = count_thread_batches(monkeypatch)
    await a_webhook_waits_its_turn(relay, db)
    assert batches == []  # it was the process that waited


@ON_SQLITE
async def test_the_writer_thread_commits_in_its_turn(
    writer_thread_only: None, relay: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = relay.app.state.store.db  # type: ignore[attr-defined]
    assert db.ingest is None
    batches = count_thread_batches(monkeypatch)
    await a_webhook_waits_its_turn(relay, db)
    assert batches == [1]


async def test_without_the_lock_file_both_writers_still_write(
    sqlite_url: str, relay_config: RelayConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """A lock file that cannot be opened (here a directory in its place) leaves the
    writers to SQLite's busy handler: a warning, and nothing else changes."""
    database = Path(sqlite_url.removeprefix("sqlite:///"))
    os.makedirs(turn_path(database))
    with caplog.at_level(logging.WARNING, logger="relay.store"):
        async with api_relay(sqlite_url, relay_config) as relay:
            db = relay.app.state.store.db  # type: ignore[attr-defined]
            assert db.ingest is not None  # the process started
            assert db.ingest.alive
            first = await post_order(relay, "wh-no-turns")
            again = await post_order(relay, "wh-no-turns")  # the thread finds the first
            assert (first.status_code, again.status_code) == (202, 200)
            assert await stored_ids(db) == [first.json()["event_id"]]
    assert any("no lock file" in r.getMessage() for r in caplog.records)


@ON_SQLITE
async def test_a_writer_killed_in_its_turn_leaves_it_free(
    relay: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest process killed while it holds the turn (waiting in SQLite's busy handler
    behind a connection that is not the relay's): the kernel frees the turn with it, so
    the writer thread, which takes the request over, gets its turn and answers 202."""
    db = relay.app.state.store.db  # type: ignore[attr-defined]
    batches = count_thread_batches(monkeypatch)
    outsider = sqlite3.connect(db.path, isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")  # SQLite's write lock, taken without a turn
    try:
        sent = asyncio.create_task(post_order(relay, "wh-killed-in-turn"))
        assert await until(lambda: turn_taken(db.path))  # the process took its turn
        os.kill(child_pid(db), signal.SIGKILL)
        assert await until(lambda: not db.ingest.alive)
    finally:
        outsider.execute("ROLLBACK")
        outsider.close()
    answer = await asyncio.wait_for(sent, timeout=10)  # a turn never freed: no answer
    assert answer.status_code == 202, answer.text
    assert await stored_ids(db) == [answer.json()["event_id"]]
    assert batches == [1]  # the writer thread stored it, in its turn
