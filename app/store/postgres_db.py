"""PostgreSQL, for several replicas sharing one database.

The SQL lives in ``app.store.queries`` (shared with SQLite); this module runs it with
psycopg 3 on a sync connection pool, from a thread pool of the same size so a call never
waits for a thread while a connection is free. Each store call is one transaction (a
serialization failure or deadlock retries it). Claims use ``FOR UPDATE SKIP LOCKED`` and
the limiter an advisory lock (see ``app.store.dialect``), so replicas cooperate through
the database alone. Webhook inserts take a faster path of their own, on the event loop
(``app.store.pg_ingest``): one statement a group commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from app.domain.events import Inserted, NewEvent
from app.store.base import CONTENT_ERRORS, StoreUnavailable, storing_failed
from app.store.dialect import POSTGRES
from app.store.migrations import migrate_postgres
from app.store.pg_ingest import BatchInserter, Outcome, take_locks
from app.store.queries import events as queries

T = TypeVar("T")
Conn = psycopg.Connection[DictRow]
PH = POSTGRES  # the dialect the insert path writes its SQL in

# The per-contact insert locks (727275-6) are pg_ingest's: pg_ingest.lock_spec.
# Errors from one request's values (text PostgreSQL cannot hold, a number out of range):
# answered 400 to that request; everything else is the database's (503).
_CONTENT_ERRORS = (*CONTENT_ERRORS, psycopg.DataError)
# Errors after which retrying a batch request by request would fail the same way.
_CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)
_TRANSACTION_ATTEMPTS = 4  # a serialization failure or deadlock is retried this many times
_RETRYABLE = (errors.SerializationFailure, errors.DeadlockDetected)
_CONNECT_TIMEOUT_SECONDS = 5
_POOL_TIMEOUT_SECONDS = 10.0  # waiting for a free connection
_PING_TIMEOUT_SECONDS = 1.5  # under the 2 s the readiness check allows
_URL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def postgres_conninfo(url: str) -> str:
    """The libpq URI for a ``postgresql://``, ``postgres://`` or SQLAlchemy-style URL."""
    if not url.startswith(_URL_SCHEMES):
        raise ValueError("a PostgreSQL URL looks like postgresql://user:password@host:5432/db")
    return "postgresql://" + url.split("://", 1)[1]


def _password_forms(url: str) -> list[str]:
    """Every spelling of the URL's password that could surface in an error message."""
    forms: set[str] = set()
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        for password in [parts.password or "", *parse_qs(parts.query).get("password", [])]:
            forms |= {password, unquote(password)}
    with contextlib.suppress(psycopg.Error, ValueError):
        forms.add(str(conninfo_to_dict(postgres_conninfo(url)).get("password") or ""))
    return sorted((form for form in forms if form), key=len, reverse=True)


class PostgresDatabase:
    dialect = POSTGRES

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self._secrets = _password_forms(url)
        try:
            self._conninfo = postgres_conninfo(url)
            params = conninfo_to_dict(self._conninfo)
        except (psycopg.Error, ValueError) as exc:
            raise ValueError(f"invalid PostgreSQL URL: {self._redact(str(exc).strip())}") from None
        self._where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
        self._where += f"/{params.get('dbname', '')}"
        self._connect_kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": False}
        if "connect_timeout" not in params:
            self._connect_kwargs["connect_timeout"] = _CONNECT_TIMEOUT_SECONDS
        if "application_name" not in params:
            self._connect_kwargs["application_name"] = "infusionsoft-relay"
        self._pool_size = pool_size
        self._pool: ConnectionPool[Conn] | None = None
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="relay-pg")
        # write_now's lane: a thread and a connection of its own, opened on first use (a
        # worker's rate gate), so a call's reservation and "sending" mark never queue
        # behind the pool's other work (docs/performance.md, "Register").
        self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-pg-lane")
        self._lane_pool: ConnectionPool[Conn] | None = None
        # Two batches in flight overlap one's commit with the next one's writes; more
        # make smaller batches, each paying the server's commit (docs/performance.md).
        self._ingest = BatchInserter(
            self._conninfo,
            self._connect_kwargs,
            connections=max(1, min(2, pool_size // 2)),
            pool_timeout=_POOL_TIMEOUT_SECONDS,
            unavailable=self._unavailable,
            fallback=self._store_each,
        )
        self.settings: dict[str, str] = {}  # synchronous_commit and fsync, read at open

    # lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        await self._in_thread(self._open_blocking)

    def _open_blocking(self) -> None:
        try:
            # A plain connection first: its error says why (refused, bad password), where
            # a pool that cannot fill would only report a timeout.
            with psycopg.connect(self._conninfo, **self._connect_kwargs) as conn:
                migrate_postgres(conn)
                # Refuse to start rather than answer 202 for what a crash could lose.
                self.settings = _durability_settings(conn)
                if problem := durability_problem(self.settings, self._where):
                    raise StoreUnavailable(problem)
            self._pool = self._open_pool("relay", self._pool_size)
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc

    def _open_pool(self, name: str, size: int) -> ConnectionPool[Conn]:
        pool: ConnectionPool[Conn] = ConnectionPool(
            self._conninfo,
            kwargs=self._connect_kwargs,
            min_size=size,
            max_size=size,
            open=False,
            name=name,
            timeout=_POOL_TIMEOUT_SECONDS,
            # Checked on checkout, so connections broken by a server restart are
            # replaced instead of failing one request each.
            check=ConnectionPool.check_connection,
        )
        try:
            pool.open(wait=True, timeout=_POOL_TIMEOUT_SECONDS)
        except BaseException:
            pool.close()
            raise
        return pool

    async def close(self) -> None:
        await self._ingest.close()  # its last batches may still need the pool below
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        await asyncio.to_thread(self._lane.shutdown, wait=True)
        for pool in (self._pool, self._lane_pool):
            if pool is not None:
                await asyncio.to_thread(pool.close)
        self._pool = self._lane_pool = None

    async def ping(self) -> None:
        def read_settings(conn: Conn) -> dict[str, str]:
            conn.execute(f"SET LOCAL statement_timeout = {int(_PING_TIMEOUT_SECONDS * 1000)}")
            return _durability_settings(conn)

        try:
            settings = await asyncio.wait_for(
                self._transact(read_settings, pool_timeout=_PING_TIMEOUT_SECONDS),
                timeout=_PING_TIMEOUT_SECONDS + 0.25,
            )
        except TimeoutError:
            raise StoreUnavailable(
                f"PostgreSQL at {self._where} did not answer within {_PING_TIMEOUT_SECONDS} s"
            ) from None
        self.settings = settings
        if problem := durability_problem(settings, self._where):
            raise StoreUnavailable(problem)

    def durability(self) -> dict[str, str]:
        """synchronous_commit and fsync as the relay's connections see them."""
        return dict(self.settings)

    def ingest_writer_up(self) -> bool | None:
        return None  # webhooks go to the server through the pool

    # running transactions ----------------------------------------------------------
    async def _in_thread(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise StoreUnavailable("the PostgreSQL store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _transact(self, fn: Callable[[Conn], T], *, pool_timeout: float | None = None) -> T:
        return await self._in_thread(lambda: self._run_transaction(fn, self._pool, pool_timeout))

    async def write(self, fn: Callable[[Conn], T]) -> T:
        return await self._transact(fn)

    async def write_now(self, fn: Callable[[Conn], T]) -> T:
        """``write`` in the lane: one thread and one connection that nothing else waits
        for. The pool's threads can all be busy with a burst of other transactions;
        measured with one worker at OAuth ceilings, the wait for one was 37 ms at p99
        and made 1.4% of slots late (docs/performance.md, "Register")."""
        if self._closed:
            raise StoreUnavailable("the PostgreSQL store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._lane, self._in_lane, fn)

    def _in_lane(self, fn: Callable[[Conn], T]) -> T:
        if self._lane_pool is None:
            if self._pool is None:
                raise StoreUnavailable("the PostgreSQL store is not open")
            try:
                self._lane_pool = self._open_pool("relay-lane", 1)
            except psycopg.Error as exc:
                raise self._unavailable(exc) from exc
        return self._run_transaction(fn, self._lane_pool)

    async def read(self, fn: Callable[[Conn], T]) -> T:
        return await self._transact(fn)  # one transaction: a consistent snapshot

    def _run_transaction(
        self,
        fn: Callable[[Conn], T],
        pool: ConnectionPool[Conn] | None,
        pool_timeout: float | None = None,
    ) -> T:
        """Run ``fn`` in one transaction on a connection of ``pool`` (the main pool or the
        lane's), again if PostgreSQL rolled it back for a retryable cause."""
        if pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        for attempt in range(1, _TRANSACTION_ATTEMPTS + 1):
            try:
                with pool.connection(timeout=pool_timeout) as conn, conn.transaction():
                    return fn(conn)
            except _RETRYABLE as exc:
                # The whole transaction was rolled back, so running it again is safe.
                if attempt == _TRANSACTION_ATTEMPTS:
                    raise self._unavailable(exc) from exc
                time.sleep(0.005 * 2**attempt * random.uniform(0.5, 1.5))
            except psycopg.Error as exc:
                raise self._unavailable(exc) from exc
        raise AssertionError("unreachable")

    def _unavailable(self, exc: psycopg.Error) -> StoreUnavailable:
        reason = str(exc).strip() or type(exc).__name__
        return StoreUnavailable(f"PostgreSQL at {self._where}: {self._redact(reason)}")

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def insert_events(self, events: list[NewEvent]) -> list[Inserted]:
        """Group commit, as on SQLite: requests that arrive while a batch is being written
        are written together in the next one, one statement (one WAL flush) each."""
        return await self._ingest.insert(events)

    async def _store_each(self, requests: list[list[NewEvent]]) -> list[Outcome]:
        """Store the requests of one group commit, each in a savepoint of one transaction,
        so only the request at fault fails (400 for its content, else 503): where the
        batch's one statement could not settle them (pg_ingest)."""
        try:
            return await self._in_thread(functools.partial(self._store_each_blocking, requests))
        except Exception as exc:  # closed
            return [(None, self._storing_failed(exc))] * len(requests)

    def _store_each_blocking(self, requests: list[list[NewEvent]]) -> list[Outcome]:
        try:
            return self._run_transaction(lambda c: self._insert_each(c, requests), self._pool)
        except Exception as exc:
            return [(None, self._storing_failed(exc))] * len(requests)

    def _insert_each(self, conn: Conn, requests: list[list[NewEvent]]) -> list[Outcome]:
        out: list[Outcome] = []
        take_locks(conn, [e for events in requests for e in events])
        for events in requests:
            try:
                with conn.transaction():  # a savepoint: a failure undoes this request only
                    out.append((queries.insert_events(conn, PH, events), None))
            except (*_RETRYABLE, *_CONNECTION_ERRORS):
                raise  # the whole transaction is retried or fails
            except Exception as exc:
                out.append((None, self._storing_failed(exc)))
        return out

    def _storing_failed(self, exc: BaseException) -> Exception:
        """What a request hears: 400 (UnstorableEvent) for its content, else 503 — as
        ``_unavailable`` words it (naming the server) when it came from there."""
        cause = exc.__cause__ if isinstance(exc, StoreUnavailable) and exc.__cause__ else exc
        if isinstance(exc, StoreUnavailable) and not isinstance(cause, _CONTENT_ERRORS):
            return exc
        error = storing_failed(cause, _CONTENT_ERRORS)
        return type(error)(self._redact(str(error)))


def _durability_settings(conn: Conn) -> dict[str, str]:
    row = conn.execute(
        "SELECT current_setting('synchronous_commit') AS synchronous_commit, "
        "current_setting('fsync') AS fsync"
    ).fetchone()
    assert row is not None  # a SELECT without FROM has one row
    return {"synchronous_commit": str(row["synchronous_commit"]), "fsync": str(row["fsync"])}


def durability_problem(settings: dict[str, str], where: str) -> str | None:
    """Why a commit on this server is not on disk when it returns, or None.

    synchronous_commit=off answers a commit before its WAL is flushed, fsync=off never
    flushes: after a crash of the server (or the machine), webhooks the relay answered
    202 for would be gone. The relay refuses to run on such a server (docs/operations.md).
    """
    problems = []
    if settings.get("synchronous_commit") == "off":
        problems.append(
            "synchronous_commit=off (set it to on for the relay's connections: "
            "postgresql.conf, ALTER DATABASE/ROLE ... SET synchronous_commit = on, or "
            "drop it from the URL's options)"
        )
    if settings.get("fsync") == "off":
        problems.append("fsync=off (set fsync = on in postgresql.conf and reload)")
    if not problems:
        return None
    return (
        f"PostgreSQL at {where} runs with {' and '.join(problems)}: a webhook answered 202 "
        "could be lost in a crash, so the relay will not use it"
    )
