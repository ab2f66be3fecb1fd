"""A 202 means on disk: the settings that make a commit durable are asserted on the
connections the relay writes with, a held write lock holds every answer back, a database
that would acknowledge before flushing is refused, and the SQLite writer cannot be lost
(issue 13, points 1 and 4)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from app.store import sqlite_db
from app.store.base import StoreUnavailable
from app.store.factory import open_store
from app.store.postgres_db import durability_problem
from app.store.sqlite_connect import DURABLE_PRAGMAS, writer_pragmas
from app.store.sqlite_db import SQLiteDatabase
from tests.support.processes import free_port, relay_env
from tests.test_ingest_http import ORDER, shopify_headers


async def post_order(relay: httpx.AsyncClient, webhook_id: str) -> httpx.Response:
    body = json.dumps(ORDER).encode()
    return await relay.post(
        "/hooks/shop", content=body, headers=shopify_headers(body, webhook_id=webhook_id)
    )


# SQLite -----------------------------------------------------------------------------
async def test_the_sqlite_writer_connection_is_wal_with_full_sync(tmp_path: Path) -> None:
    """Read on the writer's own connection, through the writer: WAL, fsynced at every
    commit (synchronous=FULL) — what docs/operations.md promises."""
    db = SQLiteDatabase(f"sqlite:///{tmp_path / 'relay.db'}")
    await db.open()
    try:
        assert DURABLE_PRAGMAS == {"journal_mode": "wal", "synchronous": "full"}
        assert await db.write(writer_pragmas) == DURABLE_PRAGMAS
        assert db.durability() == DURABLE_PRAGMAS
        await db.ping()
        # A connection the writer reopens after a failed write is set up the same way.
        db._write_failure = "the last write failed (test)"
        assert await db.write(writer_pragmas) == DURABLE_PRAGMAS
    finally:
        await db.close()


async def test_readyz_names_the_writer_durability(relay: httpx.AsyncClient) -> None:
    detail = (await relay.get("/readyz")).json()["checks"]["database"]["detail"]
    store = relay.app.state.store  # type: ignore[attr-defined]
    if store.dialect == "sqlite":
        assert "journal_mode=wal" in detail
        assert "synchronous=full" in detail
    else:
        assert "synchronous_commit=on" in detail
        assert "fsync=on" in detail


async def test_no_202_leaves_while_the_database_write_lock_is_held(
    relay: httpx.AsyncClient, database_url: str
) -> None:
    """Another connection holds the write lock: the webhook waits, unanswered, and is
    answered 202 only once its row is committed after the lock is released."""
    if database_url.startswith("sqlite"):
        blocker: Any = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        blocker.isolation_level = None
        blocker.execute("BEGIN IMMEDIATE")
    else:
        blocker = psycopg.connect(database_url)
        blocker.execute("LOCK TABLE events IN EXCLUSIVE MODE")
    try:
        answer = asyncio.create_task(post_order(relay, "wh-held"))
        await asyncio.sleep(1.0)
        assert not answer.done(), "a 202 left while the write lock was held"
    finally:
        blocker.rollback()
        blocker.close()
    response = await asyncio.wait_for(answer, timeout=10)
    assert response.status_code == 202
    store = relay.app.state.store  # type: ignore[attr-defined]
    assert await store.get_event(response.json()["event_id"]) is not None


ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@ON_SQLITE  # the writer thread is SQLite's
@pytest.mark.usefixtures("writer_thread_only")
async def test_a_stopped_writer_fails_its_batch_and_is_restarted(
    relay: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something ends the writer's loop (here: SystemExit, which no per-request net
    catches): the request it held hears 503 instead of waiting for ever, /readyz says
    the writer is down while it is, and it comes back by itself."""
    store = relay.app.state.store  # type: ignore[attr-defined]
    original = sqlite_db.commit_batch
    calls = {"n": 0}

    def dies_once(conn: sqlite3.Connection, batch: list[Any]) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("the writer was told to stop")
        return original(conn, batch)

    monkeypatch.setattr(sqlite_db, "commit_batch", dies_once)
    first = await asyncio.wait_for(post_order(relay, "wh-dies"), timeout=5)
    assert first.status_code == 503
    assert "the database writer stopped" in first.json()["detail"]
    down = await relay.get("/readyz")
    assert down.status_code == 503
    assert "the database writer stopped" in down.json()["checks"]["database"]["detail"]
    refused = await post_order(relay, "wh-while-down")
    assert refused.status_code == 503
    for _ in range(100):
        if (await relay.get("/readyz")).status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert (await relay.get("/readyz")).status_code == 200
    again = await post_order(relay, "wh-dies")  # the refused webhook, sent again
    assert again.status_code == 202
    assert await store.get_event(again.json()["event_id"]) is not None
    assert await store.db.write(writer_pragmas) == DURABLE_PRAGMAS


@ON_SQLITE
@pytest.mark.usefixtures("writer_thread_only")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_writer_thread_that_ended_is_started_again_by_the_next_check(
    relay: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last net: the supervisor itself fails while handling a stop, so the thread
    ends. The next look at the writer (/readyz here, as a load balancer polls it) finds
    it gone, answers the request it held with 503 and starts a new one."""
    store = relay.app.state.store  # type: ignore[attr-defined]
    original_commit, original_fail = sqlite_db.commit_batch, sqlite_db.fail_batch

    def dies_once(conn: sqlite3.Connection, batch: list[Any]) -> bool:
        monkeypatch.setattr(sqlite_db, "commit_batch", original_commit)
        raise SystemExit("the writer was told to stop")

    def supervisor_fails(batch: list[Any], error: BaseException) -> None:
        monkeypatch.setattr(sqlite_db, "fail_batch", original_fail)
        raise SystemExit("and so was its supervisor")

    monkeypatch.setattr(sqlite_db, "commit_batch", dies_once)
    monkeypatch.setattr(sqlite_db, "fail_batch", supervisor_fails)
    thread = store.db._writer
    held = asyncio.create_task(post_order(relay, "wh-orphaned"))
    for _ in range(100):
        if not thread.is_alive():
            break
        await asyncio.sleep(0.02)
    assert not thread.is_alive()
    assert not held.done()
    down = await relay.get("/readyz")
    assert down.status_code == 503
    assert "writer thread had ended; restarting it" in down.text
    answer = await asyncio.wait_for(held, timeout=5)
    assert answer.status_code == 503
    for _ in range(100):
        if (await relay.get("/readyz")).status_code == 200:
            break
        await asyncio.sleep(0.05)
    again = await post_order(relay, "wh-orphaned")
    assert again.status_code == 202
    assert store.db._writer is not thread


@ON_SQLITE
@pytest.mark.usefixtures("writer_thread_only")
async def test_a_writer_bug_fails_one_batch_and_the_writer_goes_on(
    relay: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = relay.app.state.store  # type: ignore[attr-defined]
    original = sqlite_db.commit_batch
    calls = {"n": 0}

    def fails_once(conn: sqlite3.Connection, batch: list[Any]) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("a bug")
        return original(conn, batch)

    monkeypatch.setattr(sqlite_db, "commit_batch", fails_once)
    thread = store.db._writer
    first = await post_order(relay, "wh-bug")
    assert first.status_code == 503
    assert "KeyError" in first.json()["detail"]
    second = await post_order(relay, "wh-bug")
    assert second.status_code == 202
    assert store.db._writer is thread
    assert thread.is_alive()
    assert (await relay.get("/readyz")).status_code == 200


# PostgreSQL -------------------------------------------------------------------------
def with_options(url: str, option: str) -> str:
    """``url`` with one more ``-c name=value`` in its ``options`` (this connection's
    session only: the server's configuration is not touched)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["options"] = f"{query.get('options', '')} {option}".strip()
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


async def test_postgres_with_synchronous_commit_off_is_refused(postgres_schema_url: str) -> None:
    store = open_store(with_options(postgres_schema_url, "-c synchronous_commit=off"))
    with pytest.raises(StoreUnavailable, match="synchronous_commit=off") as refused:
        await store.open()
    await store.close()
    assert "a webhook answered 202 could be lost in a crash" in str(refused.value)


def test_relay_serve_refuses_to_start_on_postgres_without_durable_commits(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    url = with_options(postgres_schema_url, "-c synchronous_commit=off")
    env = relay_env(tmp_path, url, None)
    completed = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--workers", "0", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert "synchronous_commit=off" in completed.stderr
    assert "RELAY_DATABASE_URL" in completed.stderr


async def test_postgres_durable_settings_are_accepted_and_reported(
    postgres_schema_url: str,
) -> None:
    for level in ("on", "local", "remote_write"):
        store = open_store(with_options(postgres_schema_url, f"-c synchronous_commit={level}"))
        await store.open()
        try:
            await store.ping()
            assert store.durability() == {"synchronous_commit": level, "fsync": "on"}
        finally:
            await store.close()


def test_fsync_off_is_named_as_the_reason() -> None:
    """fsync is the server's own setting (no session can change it): the decision that
    reads it is checked here, the reading by the tests above."""
    problem = durability_problem({"synchronous_commit": "on", "fsync": "off"}, "db:5432/x")
    assert problem is not None
    assert "fsync=off" in problem
    assert "db:5432/x" in problem
    both = durability_problem({"synchronous_commit": "off", "fsync": "off"}, "db:5432/x")
    assert both is not None
    assert "synchronous_commit=off" in both
    assert "fsync=off" in both
    assert durability_problem({"synchronous_commit": "local", "fsync": "on"}, "x") is None
