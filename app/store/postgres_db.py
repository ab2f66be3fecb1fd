"""PostgreSQL, for several replicas sharing one database.

The SQL lives in ``app.store.queries`` (shared with SQLite); this module runs it with
psycopg 3 on a sync connection pool, from a thread pool of the same size so a call never
waits for a thread while a connection is free. Each store call is one transaction (a
serialization failure or deadlock retries it). Claims use ``FOR UPDATE SKIP LOCKED`` and
the limiter an advisory lock (see ``app.store.dialect``), so replicas cooperate through
the database alone; webhooks are written by flushers in group commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
import zlib
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
from app.store.queries import events as queries

T = TypeVar("T")
Conn = psycopg.Connection[DictRow]
PH = POSTGRES  # the dialect the insert path writes its SQL in

# pg_advisory_xact_lock(_CONTACT_LOCKS, crc32 of the contact key): the two-key form, a
# space of its own. Held by an insert from before its rows take their ``seq`` until it
# has committed, so per contact ``seq`` follows commit order (see _lock_contacts).
_CONTACT_LOCKS = 727275
# (_ALL_CONTACTS, 0): shared by every insert taking contact locks, exclusive for a batch
# of more contacts than _MAX_CONTACT_LOCKS, which then takes no contact lock. Advisory
# locks fill the server's shared lock table (max_locks_per_transaction x connections,
# 6 400 by default): a few replicas' flushers holding 512 locks each could exhaust it.
_ALL_CONTACTS = 727276
_MAX_CONTACT_LOCKS = 64
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
_MAX_INSERT_BATCH = 512
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
        self._pending_inserts: list[tuple[list[NewEvent], asyncio.Future[list[Inserted]]]] = []
        self._insert_flushers = 0
        # A few batches in flight at once overlap one's commit with the next one's writes,
        # leaving the rest of the pool to the worker and the admin API.
        self._max_insert_flushers = max(1, min(4, pool_size // 2))
        self._flush_tasks: set[asyncio.Task[None]] = set()
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
            pool: ConnectionPool[Conn] = ConnectionPool(
                self._conninfo,
                kwargs=self._connect_kwargs,
                min_size=self._pool_size,
                max_size=self._pool_size,
                open=False,
                name="relay",
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
            self._pool = pool
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        if self._pool is not None:
            await asyncio.to_thread(self._pool.close)
            self._pool = None

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

    # running transactions ----------------------------------------------------------
    async def _in_thread(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise StoreUnavailable("the PostgreSQL store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _transact(self, fn: Callable[[Conn], T], *, pool_timeout: float | None = None) -> T:
        return await self._in_thread(lambda: self._run_transaction(fn, pool_timeout))

    async def write(self, fn: Callable[[Conn], T]) -> T:
        return await self._transact(fn)

    async def read(self, fn: Callable[[Conn], T]) -> T:
        return await self._transact(fn)  # one transaction: a consistent snapshot

    def _run_transaction(self, fn: Callable[[Conn], T], pool_timeout: float | None) -> T:
        pool = self._pool
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
        are written together in the next one, one transaction (one WAL flush) each."""
        future: asyncio.Future[list[Inserted]] = asyncio.get_running_loop().create_future()
        self._pending_inserts.append((events, future))
        if self._insert_flushers < self._max_insert_flushers:
            self._insert_flushers += 1
            task = asyncio.get_running_loop().create_task(self._flush_inserts())
            self._flush_tasks.add(task)
            task.add_done_callback(self._flush_tasks.discard)
        return await future

    async def _flush_inserts(self) -> None:
        try:
            while self._pending_inserts:
                batch = self._pending_inserts[:_MAX_INSERT_BATCH]
                del self._pending_inserts[:_MAX_INSERT_BATCH]
                try:
                    outcomes = await self._in_thread(
                        functools.partial(self._store_batch, [events for events, _ in batch])
                    )
                except Exception as exc:  # closed, or a bug: nobody may wait for ever
                    outcomes = [(None, storing_failed(exc, ()))] * len(batch)
                for (_, future), (result, error) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if error is not None or result is None:
                        future.set_exception(error or StoreUnavailable("nothing was stored"))
                    else:
                        future.set_result(result)
        finally:
            self._insert_flushers -= 1

    def _store_batch(
        self, requests: list[list[NewEvent]]
    ) -> list[tuple[list[Inserted] | None, Exception | None]]:
        """Store the requests of one group commit in one transaction; if that fails for
        a reason other than the connection, store them again each in a savepoint of one
        transaction, so only the request at fault fails (400 for its content, else 503)."""
        # In arrival order: ``seq`` is the order events are delivered in per contact.
        # (Two replicas' batches inserting the same dedupe keys in a different order can
        # deadlock; the transaction is then retried.)
        merged = [e for events in requests for e in events]
        try:
            results = self._run_transaction(lambda c: _insert_locked(c, merged), None)
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, StoreUnavailable) else exc
            if len(requests) == 1 or isinstance(cause, _CONNECTION_ERRORS) or cause is None:
                return [(None, self._storing_failed(exc))] * len(requests)
            try:
                return self._run_transaction(lambda c: self._insert_each(c, requests), None)
            except Exception as again:
                return [(None, self._storing_failed(again))] * len(requests)
        out: list[tuple[list[Inserted] | None, Exception | None]] = []
        start = 0
        for events in requests:
            out.append((results[start : start + len(events)], None))
            start += len(events)
        return out

    def _insert_each(
        self, conn: Conn, requests: list[list[NewEvent]]
    ) -> list[tuple[list[Inserted] | None, Exception | None]]:
        out: list[tuple[list[Inserted] | None, Exception | None]] = []
        _lock_contacts(conn, [e for events in requests for e in events])
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


def _insert_locked(conn: Conn, events: list[NewEvent]) -> list[Inserted]:
    _lock_contacts(conn, events)
    return queries.insert_events(conn, PH, events)


def _lock_contacts(conn: Conn, events: list[NewEvent]) -> None:
    """Take the per-contact lock of every contact among ``events`` (in one order, so two
    inserts never wait for each other in a cycle), before any row takes its ``seq``.

    The lock is held until the transaction has committed. Of two inserts of one contact,
    the second therefore takes its ``seq`` only after the first is committed and visible:
    per contact, ``seq`` order is commit order, which is the order the 202s leave in (a
    202 leaves after its commit), whichever replica took each webhook; and no snapshot
    sees an event of a contact while an earlier ``seq`` of that contact is still to
    commit, so the worker's "no earlier pending event of the contact" check cannot pass
    an event ahead of one still committing. Inserts of different contacts do not wait for
    each other (two contacts sharing a 32-bit key only serialise their inserts).

    Every such insert also holds the all-contacts lock shared; a batch of more than
    _MAX_CONTACT_LOCKS contacts (a burst) holds it exclusive instead, so it is alone and
    the same holds with one lock instead of hundreds."""
    keys = sorted(
        {_lock_key(e.contact_email.lower()) for e in events if e.contact_email is not None}
    )
    if not keys:
        return
    if len(keys) > _MAX_CONTACT_LOCKS:
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_ALL_CONTACTS,))
        return
    conn.execute(
        "SELECT CASE WHEN n = 1 THEN pg_advisory_xact_lock_shared(%s, k) "
        "ELSE pg_advisory_xact_lock(%s, k) END "
        "FROM unnest(%s::int4[]) WITH ORDINALITY AS t(k, n) ORDER BY n",
        (_ALL_CONTACTS, _CONTACT_LOCKS, [0, *keys]),
    )


def _lock_key(contact_key: str) -> int:
    """A contact key as a signed 32-bit lock key (the same in every replica)."""
    crc = zlib.crc32(contact_key.encode("utf-8", "surrogatepass"))
    return crc - (1 << 32) if crc >= 1 << 31 else crc


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
