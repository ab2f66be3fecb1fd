"""PostgreSQL, for several replicas sharing one database.

The SQL lives in ``queries`` (shared with SQLite); this module runs it with psycopg 3 on a
sync connection pool, from a thread pool of the same size so a call never waits for a
thread while a connection is free. Each store call is one transaction. Webhook inserts
take a faster path of their own, on the event loop (``pg_ingest``). Claims use
``FOR UPDATE SKIP LOCKED`` and the limiter an advisory lock, so replicas cooperate
through the database alone.
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

from app.store import queries
from app.store.base import (
    CONTENT_ERRORS,
    AttemptRecord,
    DeadEvent,
    DeadGroup,
    EventFilter,
    EventRecord,
    Inserted,
    NewEvent,
    Replanner,
    StoredToken,
    StoreUnavailable,
    storing_failed,
)
from app.store.migrations import MIGRATIONS
from app.store.pg_ingest import BatchInserter, Outcome, take_locks

T = TypeVar("T")
Conn = psycopg.Connection[DictRow]
PH = "%s"

_MIGRATION_LOCK = 727273  # pg_advisory_xact_lock key; the limiter uses 727274 (and
# the per-contact insert locks 727275-6: pg_ingest.lock_spec)
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


class PostgresStore:
    dialect = "postgres"

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
        # A few batches in flight at once overlap one's commit with the next one's writes.
        self._ingest = BatchInserter(
            self._conninfo,
            self._connect_kwargs,
            connections=max(1, min(4, pool_size // 2)),
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
                _migrate(conn)
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
        await self._ingest.close()  # its last batches may still need the pool below
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

    # ingest ------------------------------------------------------------------------
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
            return self._run_transaction(lambda c: self._insert_each(c, requests), None)
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

    # delivery ----------------------------------------------------------------------
    async def claim_due_events(
        self, worker_id: str, now: float, lease_seconds: float, limit: int
    ) -> list[EventRecord]:
        return await self._transact(
            lambda c: queries.claim_due_events(c, PH, worker_id, now, lease_seconds, limit)
        )

    async def renew_claims(self, worker_id: str, event_ids: list[str], until: float) -> None:
        if event_ids:
            await self._transact(lambda c: queries.renew_claims(c, PH, worker_id, event_ids, until))

    async def complete_step(
        self,
        event_id: str,
        idx: int,
        worker_id: str,
        result: Any,
        contact_id: int | None,
        *,
        replaces: int | None = None,
    ) -> bool:
        return await self._transact(
            lambda c: queries.complete_step(
                c, PH, event_id, idx, worker_id, result, contact_id, replaces
            )
        )

    async def mark_step_sending(self, event_id: str, idx: int, worker_id: str) -> bool:
        return await self._transact(
            lambda c: queries.mark_step_sending(c, PH, event_id, idx, worker_id)
        )

    async def fail_step(
        self,
        event_id: str,
        idx: int,
        worker_id: str,
        error: str,
        *,
        dead: bool,
        next_attempt_at: float | None,
        now: float,
    ) -> bool:
        return await self._transact(
            lambda c: queries.fail_step(
                c, PH, event_id, idx, worker_id, error, dead, next_attempt_at, now
            )
        )

    async def give_up_step(self, event_id: str, idx: int, worker_id: str, error: str) -> bool:
        return await self._transact(
            lambda c: queries.give_up_step(c, PH, event_id, idx, worker_id, error)
        )

    async def finish_event(
        self, event_id: str, worker_id: str, now: float, *, dead_reason: str | None = None
    ) -> bool:
        return await self._transact(
            lambda c: queries.finish_event(c, PH, event_id, worker_id, now, dead_reason)
        )

    async def release_claim(self, event_id: str, worker_id: str, next_attempt_at: float) -> None:
        await self._transact(
            lambda c: queries.release_claim(c, PH, event_id, worker_id, next_attempt_at)
        )

    async def record_attempts(self, attempts: list[AttemptRecord]) -> None:
        if attempts:
            await self._transact(lambda c: queries.record_attempts(c, PH, attempts))

    # limiter -----------------------------------------------------------------------
    async def reserve_call(self, now: float, ceilings: list[tuple[int, float]]) -> float:
        return await self._transact(lambda c: queries.reserve_call(c, PH, now, ceilings))

    async def calls_since(self, moments: list[float]) -> list[int]:
        return await self._transact(lambda c: queries.calls_since(c, PH, moments))

    async def set_not_before(self, until: float) -> None:
        await self._transact(lambda c: queries.set_not_before(c, PH, until))

    # contact reuse -----------------------------------------------------------------
    async def reused_contact(self, email_key: str, fields_key: str, since: float) -> int | None:
        return await self._transact(
            lambda c: queries.reused_contact(c, PH, email_key, fields_key, since)
        )

    async def remember_contact(
        self, email_key: str, fields_key: str, contact_id: int, now: float, keep: float
    ) -> None:
        await self._transact(
            lambda c: queries.remember_contact(c, PH, email_key, fields_key, contact_id, now, keep)
        )

    async def forget_contact(self, email_key: str, contact_id: int) -> None:
        await self._transact(lambda c: queries.forget_contact(c, PH, email_key, contact_id))

    # oauth -------------------------------------------------------------------------
    async def load_oauth_token(self) -> StoredToken | None:
        return await self._transact(lambda c: queries.load_oauth_token(c, PH))

    async def save_oauth_token(
        self, token: StoredToken, *, previous_refresh_token: str | None
    ) -> bool:
        return await self._transact(
            lambda c: queries.save_oauth_token(c, PH, token, previous_refresh_token, time.time())
        )

    # admin sessions ----------------------------------------------------------------
    async def create_admin_session(self, id_hash: str, now: float, expires_at: float) -> None:
        await self._transact(
            lambda c: queries.create_admin_session(c, PH, id_hash, now, expires_at)
        )

    async def admin_session_active(self, id_hash: str, now: float) -> bool:
        return await self._transact(lambda c: queries.admin_session_active(c, PH, id_hash, now))

    async def revoke_admin_session(self, id_hash: str) -> None:
        await self._transact(lambda c: queries.revoke_admin_session(c, PH, id_hash))

    # operator ----------------------------------------------------------------------
    async def event_payload_text(self, event_id: str) -> str | None:
        return await self._transact(lambda c: queries.event_payload_text(c, PH, event_id))

    async def list_events(
        self, flt: EventFilter, limit: int, before_seq: int | None
    ) -> list[EventRecord]:
        return await self._transact(lambda c: queries.list_events(c, PH, flt, limit, before_seq))

    async def get_event(self, event_id: str) -> EventRecord | None:
        return await self._transact(lambda c: queries.get_event(c, PH, event_id))

    async def requeue(
        self,
        event_id: str,
        *,
        from_start: bool,
        now: float,
        dry_run_steps: bool = False,
        replan: Replanner | None = None,
    ) -> bool:
        return await self._transact(
            lambda c: queries.requeue(
                c, PH, event_id, from_start, now, dry_run_steps=dry_run_steps, replan=replan
            )
        )

    async def requeue_matching(
        self,
        flt: EventFilter,
        now: float,
        *,
        from_start: bool = False,
        dry_run_steps: bool = False,
        replan: Replanner | None = None,
    ) -> int:
        ids = await self._transact(lambda c: queries.requeue_candidates(c, PH, flt, dry_run_steps))
        count = 0
        for start in range(0, len(ids), queries.REQUEUE_BATCH):
            requeue_batch = functools.partial(
                queries.requeue_many,
                ph=PH,
                event_ids=ids[start : start + queries.REQUEUE_BATCH],
                now=now,
                from_start=from_start,
                dry_run_steps=dry_run_steps,
                replan=replan,
            )
            count += await self._transact(requeue_batch)
        return count

    async def count_by_status(self) -> dict[str, int]:
        return await self._transact(lambda c: queries.count_by_status(c, PH))

    async def dead_groups(self, limit: int) -> list[DeadGroup]:
        return await self._transact(lambda c: queries.dead_groups(c, PH, limit))

    async def dead_since(self, since: float, until: float, limit: int) -> list[DeadEvent]:
        return await self._transact(lambda c: queries.dead_since(c, PH, since, until, limit))

    async def load_alert_state(self, prefix: str) -> dict[str, tuple[float, float]]:
        return await self._transact(lambda c: queries.load_alert_state(c, PH, prefix))

    async def forget_alert_state(self, prefix: str, sent_before: float) -> int:
        return await self._transact(
            lambda c: queries.forget_alert_state(c, PH, prefix, sent_before)
        )

    async def advance_alert_state(
        self, key: str, value: float, now: float, *, expected: float | None = None
    ) -> bool:
        return await self._transact(
            lambda c: queries.advance_alert_state(c, PH, key, value, now, expected)
        )

    async def purge_finished(self, before: float, batch: int) -> int:
        return await self._transact(lambda c: queries.purge_finished(c, PH, before, batch))


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


def _migrate(conn: Conn) -> None:
    """Apply the missing migrations, each in a transaction holding the migration lock, so
    replicas starting together on an empty database migrate exactly once."""
    for version, description, statements in MIGRATIONS:
        with conn.transaction():
            conn.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            # Under the lock: IF NOT EXISTS alone is not safe against a concurrent CREATE.
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            applied = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
            ).fetchone()
            if applied:
                continue
            for statement in statements["postgres"]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) "
                "VALUES (%s, %s, %s)",
                (version, description, time.time()),
            )
