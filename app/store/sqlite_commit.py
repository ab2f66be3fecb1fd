"""The SQLite writer's group commit: every job queued since the last commit, in one
transaction, each caller answered on its own event loop once it is on disk.

Webhook inserts are merged into multi-row statements (alone in a batch, one autocommitted
statement); every other job runs in a savepoint, so one job's failure does not undo its
neighbours' work.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

from app.domain.events import Inserted, NewEvent
from app.store.base import CONTENT_ERRORS, StoreUnavailable, storing_failed
from app.store.dialect import SQLITE
from app.store.queries import events as event_sql

Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


def commit_batch(conn: sqlite3.Connection, batch: list[Job]) -> bool:
    """Run every queued job in one transaction and commit once (group commit).

    Webhook inserts are merged into multi-row statements; every other job runs in a
    savepoint so one job's failure does not undo its neighbours' work. False when the
    transaction or a job failed in the database.
    """
    inserts = [(job, job[0]) for job in batch if isinstance(job[0], InsertJob)]
    others = [job for job in batch if not isinstance(job[0], InsertJob)]
    outcomes: dict[int, tuple[Any, BaseException | None]] = {}
    if not others and _insert_alone(conn, inserts, outcomes):
        _settle_batch(batch, outcomes)
        return True
    try:
        conn.execute("BEGIN IMMEDIATE")
        if inserts:
            _run_inserts(conn, inserts, outcomes)
        for job in others:
            outcomes[id(job)] = _run_in_savepoint(conn, job[0])
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        failure = StoreUnavailable(f"database error: {exc}")
        outcomes = {id(job): (None, failure) for job in batch}
        committed = False
    else:
        committed = True
    _settle_batch(batch, outcomes)
    return committed and not any(
        isinstance(error, StoreUnavailable) for _, error in outcomes.values()
    )


class InsertJob:
    """Webhook events to insert; the writer merges all queued ones into one statement."""

    __slots__ = ("events", "rows")

    def __init__(self, events: list[NewEvent], rows: list[event_sql.EventRow]) -> None:
        self.events = events
        self.rows = rows

    def __call__(self, conn: sqlite3.Connection) -> list[Inserted]:
        try:
            return event_sql.insert_events(conn, SQLITE, self.events, self.rows)
        except sqlite3.Error:
            raise
        except Exception as exc:  # binding a value failed: this request's content
            raise storing_failed(exc, CONTENT_ERRORS) from exc


def fail_batch(batch: list[Job], error: BaseException) -> None:
    """Answer every job of the batch not yet answered with ``error``."""
    _settle_batch(batch, {id(job): (None, error) for job in batch})


def _settle_batch(batch: list[Job], outcomes: dict[int, tuple[Any, BaseException | None]]) -> None:
    """Hand each job its outcome: one wake-up of each event loop per batch, not per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, Any]]] = {}
    for job in batch:
        _, future, loop = job
        by_loop.setdefault(loop, []).append((future, *outcomes[id(job)]))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle_all, settled)


def _insert_alone(
    conn: sqlite3.Connection,
    inserts: list[tuple[Job, Any]],
    outcomes: dict[int, tuple[Any, BaseException | None]],
) -> bool:
    """The common batch under load: only new webhooks, no more rows than one statement
    takes. That statement is its own transaction (autocommit: durable, WAL fsynced, when
    it returns), so the batch costs one step of the database instead of five (BEGIN,
    SAVEPOINT, INSERT, RELEASE, COMMIT) — each a release and retake of the GIL while the
    event loop wants it. False when the batch must take the transactional path instead:
    the statement failed (and stored nothing), or a row was a duplicate — the rows it did
    store are then found there under their own ids, so they still count as created."""
    rows = [row for _, insert in inserts for row in insert.rows]
    if not rows or len(rows) > event_sql.MAX_ROWS_PER_STATEMENT:
        return False
    try:
        inserted = event_sql.insert_rows(conn, SQLITE, rows)
    except Exception:  # a database error or a value that would not bind
        return False  # stored nothing; the transactional path finds out for whom
    if inserted != len(rows):
        return False
    for job, insert in inserts:
        outcomes[id(job)] = ([Inserted(e.id, created=True) for e in insert.events], None)
    return True


def _run_inserts(
    conn: sqlite3.Connection,
    inserts: list[tuple[Job, Any]],
    outcomes: dict[int, tuple[Any, BaseException | None]],
) -> None:
    merged = [event for _, insert in inserts for event in insert.events]
    rows = [row for _, insert in inserts for row in insert.rows]
    try:
        conn.execute("SAVEPOINT inserts")
        results = event_sql.insert_events(conn, SQLITE, merged, rows)
        conn.execute("RELEASE inserts")
    except Exception:  # a database error or a value that would not bind
        # Something in the merged batch failed: fall back to one savepoint per request,
        # so only the request at fault hears about it.
        conn.execute("ROLLBACK TO inserts")
        conn.execute("RELEASE inserts")
        for job, insert in inserts:
            outcomes[id(job)] = _run_in_savepoint(conn, insert)
        return
    start = 0
    for job, insert in inserts:
        outcomes[id(job)] = (results[start : start + len(insert.events)], None)
        start += len(insert.events)


def _run_in_savepoint(
    conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any]
) -> tuple[Any, BaseException | None]:
    conn.execute("SAVEPOINT job")
    try:
        result = fn(conn)
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        return None, StoreUnavailable(f"database error: {exc}")
    except Exception as exc:
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        return None, exc
    conn.execute("RELEASE job")
    return result, None


def _settle_all(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        settle(future, result, error)


def settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
