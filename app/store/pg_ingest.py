"""Webhook inserts on PostgreSQL: group commit on the event loop, one statement a batch.

Requests that arrive while a batch is committing are written together in the next one.
A batch is one statement on an autocommit connection of a small async pool: it takes the
batch's per-contact locks, then inserts every row from one JSON parameter, and commits —
one round trip and one WAL flush, no thread hand-off, one SQL text (prepared once) for
every batch size. The measurements behind each choice are in docs/performance.md.

Whatever that statement cannot settle alone — a duplicate among the rows, a value the
server refuses, a broken connection — goes to ``fallback``: the store's transactional
path, which stores each request in a savepoint so only the request at fault fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app.domain.events import Inserted, NewEvent
from app.store.base import CONTENT_ERRORS, StoreUnavailable, storing_failed
from app.store.queries import events as queries

Outcome = tuple[list[Inserted] | None, Exception | None]
Fallback = Callable[[list[list[NewEvent]]], Awaitable[list[Outcome]]]

# pg_advisory_xact_lock(CONTACT_LOCKS, crc32 of the contact key): the two-key form, a
# space of its own. Held by an insert from before its rows take their ``seq`` until it
# has committed, so per contact ``seq`` follows commit order (see lock_spec).
CONTACT_LOCKS = 727275
# (ALL_CONTACTS, 0): shared by every insert taking contact locks, exclusive for a batch
# of more contacts than MAX_CONTACT_LOCKS, which then takes no contact lock. Advisory
# locks fill the server's shared lock table (max_locks_per_transaction x connections,
# 6 400 by default): a few replicas' flushers holding 512 locks each could exhaust it.
ALL_CONTACTS = 727276
MAX_CONTACT_LOCKS = 64
MAX_BATCH_REQUESTS = 512
# A second batch goes out beside the one in flight only once this many requests wait: a
# second connection taking whatever had arrived sent batches of 8.5 rows on average, a
# quarter of them 1-3, each paying a statement's send, reply and pool checkout (and the
# server's commit) for a few rows. Waiting for the one in flight doubles them, and the
# second connection still serves a backlog (docs/performance.md).
OVERLAP_MIN_REQUESTS = 32

# The columns ``queries.event_row`` gives, with their types.
_COLUMNS = (
    ("id", "text"),
    ("source", "text"),
    ("event_type", "text"),
    ("external_id", "text"),
    ("dedupe_key", "text"),
    ("status", "text"),
    ("received_at", "float8"),
    ("contact_email", "text"),
    ("contact_key", "text"),
    ("next_attempt_at", "float8"),
    ("last_error", "text"),
    ("payload", "text"),
    ("headers", "text"),
    ("routes", "text"),
    ("steps", "text"),
    ("updated_at", "float8"),
)
_KEYS = tuple(name for name, _ in _COLUMNS)
_NAMES = ", ".join(_KEYS)
# The locks are taken in array order (an ordinality scan is read in order), and all of
# them before any row is made: the insert's rows, and their ``seq`` (nextval), come out
# of a node gated by a one-time filter on the lock count (an InitPlan, run first).
INSERT_BATCH = f"""WITH locked AS MATERIALIZED (
    SELECT CASE WHEN s THEN pg_advisory_xact_lock_shared(c, k)
                ELSE pg_advisory_xact_lock(c, k) END
    FROM unnest(%s::int4[], %s::int4[], %s::bool[]) WITH ORDINALITY AS t(c, k, s, n)
    ORDER BY n)
INSERT INTO events ({_NAMES}, attempts)
SELECT {_NAMES}, 0 FROM json_to_recordset(%s::json)
    AS r({", ".join(f"{name} {kind}" for name, kind in _COLUMNS)})
WHERE (SELECT count(*) FROM locked) >= 0
ON CONFLICT (source, dedupe_key) DO NOTHING"""

Request = tuple[list[NewEvent], list[queries.EventRow], "asyncio.Future[list[Inserted]]"]
LockSpec = tuple[list[int], list[int], list[bool]]  # lock spaces, keys, shared or not


def lock_spec(events: list[NewEvent]) -> LockSpec:
    """The per-contact locks of every contact among ``events``, in one order (so two
    inserts never wait for each other in a cycle), as (space, key, shared) arrays.

    Each lock is held until the transaction has committed. Of two inserts of one contact,
    the second therefore takes its ``seq`` only after the first is committed and visible:
    per contact, ``seq`` order is commit order, which is the order the 202s leave in (a
    202 leaves after its commit), whichever replica took each webhook; and no snapshot
    sees an event of a contact while an earlier ``seq`` of that contact is still to
    commit, so the worker's "no earlier pending event of the contact" check cannot pass
    an event ahead of one still committing. Inserts of different contacts do not wait for
    each other (two contacts sharing a 32-bit key only serialise their inserts).

    Every such insert also holds the all-contacts lock shared; a batch of more than
    MAX_CONTACT_LOCKS contacts (a burst) holds it exclusive instead, so it is alone and
    the same holds with one lock instead of hundreds."""
    keys = sorted(
        {_lock_key(e.contact_email.lower()) for e in events if e.contact_email is not None}
    )
    if not keys:
        return [], [], []
    if len(keys) > MAX_CONTACT_LOCKS:
        return [ALL_CONTACTS], [0], [False]
    return [ALL_CONTACTS] + [CONTACT_LOCKS] * len(keys), [0, *keys], [True] + [False] * len(keys)


def take_locks(conn: Any, events: list[NewEvent]) -> None:
    """Take ``lock_spec(events)`` on a sync connection, inside its transaction."""
    spaces, keys, shared = lock_spec(events)
    if keys:
        conn.execute(
            "SELECT CASE WHEN s THEN pg_advisory_xact_lock_shared(c, k) "
            "ELSE pg_advisory_xact_lock(c, k) END "
            "FROM unnest(%s::int4[], %s::int4[], %s::bool[]) WITH ORDINALITY AS t(c, k, s, n) "
            "ORDER BY n",
            (spaces, keys, shared),
        )


def _lock_key(contact_key: str) -> int:
    """A contact key as a signed 32-bit lock key (the same in every replica)."""
    crc = zlib.crc32(contact_key.encode("utf-8", "surrogatepass"))
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class BatchInserter:
    """Group commit of ``insert`` calls, on the event loop that opened the pool.

    ``connections`` batches commit at once at most, each on a connection of its own: when
    OVERLAP_MIN_REQUESTS wait, one batch's commit (its WAL flush) overlaps the next one's
    writes; fewer wait for the batch in flight, and go together after it. The pool opens on
    the first insert, so a process that takes no webhooks (worker, CLI) opens none.
    """

    def __init__(
        self,
        conninfo: str,
        connect_kwargs: dict[str, Any],
        *,
        connections: int,
        pool_timeout: float,
        unavailable: Callable[[psycopg.Error], StoreUnavailable],
        fallback: Fallback,
    ) -> None:
        self._conninfo = conninfo
        self._connect_kwargs = {**connect_kwargs, "autocommit": True}
        self._connections = connections
        self._pool_timeout = pool_timeout
        self._unavailable = unavailable
        self._fallback = fallback
        self._pool: AsyncConnectionPool[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[Request] = []
        self._flushers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def insert(self, events: list[NewEvent]) -> list[Inserted]:
        if self._closed:
            raise StoreUnavailable("the PostgreSQL store is closed")
        loop = asyncio.get_running_loop()
        if self._loop is not None and loop is not self._loop:
            # The pool belongs to another event loop (a store shared across loops, as
            # in some tests): the transactional path serves any loop.
            (outcome,) = await self._fallback([events])
            return _unwrap(outcome)
        self._loop = loop
        try:  # serialised here, in the request's task: a value at fault fails it alone
            rows = [queries.event_row(e) for e in events]
        except Exception as exc:
            raise storing_failed(exc, CONTENT_ERRORS) from exc
        future: asyncio.Future[list[Inserted]] = loop.create_future()
        self._pending.append((events, rows, future))
        if self._flushers == 0 or (
            self._flushers < self._connections and len(self._pending) >= OVERLAP_MIN_REQUESTS
        ):
            self._flushers += 1
            task = loop.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def close(self) -> None:
        self._closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close()

    async def _flush(self) -> None:
        """Send the waiting requests, a batch at a time, while any wait, on one connection
        held from batch to batch (docs/performance.md), given back after a failed batch."""
        try:
            while self._pending:
                try:
                    pool = await self._open_pool()
                    async with pool.connection() as conn:
                        while self._pending and await self._send(conn, self._take()):
                            pass
                except PoolTimeout as exc:  # no connection to be had: the fallback would wait
                    self._settle(self._take(), self._unavailable(exc))
                except Exception:  # the pool failed otherwise: the transactional path serves
                    await self._settle_by_fallback(self._take())
        finally:
            self._flushers -= 1

    def _take(self) -> list[Request]:
        batch = self._pending[:MAX_BATCH_REQUESTS]
        del self._pending[:MAX_BATCH_REQUESTS]
        return batch

    async def _send(self, conn: Any, batch: list[Request]) -> bool:
        """Store ``batch`` on ``conn`` and answer its requests; False if the statement
        failed, so the connection goes back to the pool (which replaces a broken one)."""
        merged = [e for events, _, _ in batch for e in events]
        rows = [row for _, request_rows, _ in batch for row in request_rows]
        try:
            inserted = await self._insert(conn, merged, rows)
        except Exception:
            # A value refused, a broken connection: sorted out request by request.
            await self._settle_by_fallback(batch)
            return False
        if inserted != len(rows):  # a duplicate: the transactional path names the first
            await self._settle_by_fallback(batch)
            return True
        for events, _, future in batch:
            if not future.done():
                future.set_result([Inserted(e.id, created=True) for e in events])
        return True

    async def _settle_by_fallback(self, batch: list[Request]) -> None:
        try:
            outcomes = await self._fallback([events for events, _, _ in batch])
        except Exception as exc:  # a bug: nobody may wait for ever
            outcomes = [(None, storing_failed(exc, ()))] * len(batch)
        for (_, _, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                try:
                    future.set_result(_unwrap(outcome))
                except Exception as exc:
                    future.set_exception(exc)

    @staticmethod
    def _settle(batch: list[Request], error: BaseException) -> None:
        for _, _, future in batch:
            if not future.done():
                future.set_exception(error)

    async def _insert(self, conn: Any, events: list[NewEvent], rows: list[queries.EventRow]) -> int:
        """Lock, insert and commit ``rows`` in one statement; the number inserted."""
        spaces, keys, shared = lock_spec(events)
        # One JSON document of every row; a lone surrogate raises here (the fallback's).
        document = orjson.dumps([dict(zip(_KEYS, row, strict=True)) for row in rows]).decode()
        # The lock arrays as literals, cast by the statement (docs/performance.md).
        cursor = await conn.execute(
            INSERT_BATCH, (_int_array(spaces), _int_array(keys), _bool_array(shared), document)
        )
        return int(cursor.rowcount)

    async def _open_pool(self) -> AsyncConnectionPool[Any]:
        if self._pool is None:
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                self._conninfo,
                kwargs=self._connect_kwargs,
                min_size=self._connections,
                max_size=self._connections,
                open=False,
                name="relay-ingest",
                timeout=self._pool_timeout,
            )
            await pool.open(wait=False)
            self._pool = pool
        return self._pool


def _int_array(values: list[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _bool_array(values: list[bool]) -> str:
    return "{" + ",".join(["t" if value else "f" for value in values]) + "}"


def _unwrap(outcome: Outcome) -> list[Inserted]:
    result, error = outcome
    if error is not None or result is None:
        raise error or StoreUnavailable("nothing was stored")
    return result
