"""The embedded default: one SQLite file in WAL mode with full sync.

All writes go through one writer thread that commits whatever has queued up since its
last commit in a single transaction (group commit): concurrent webhooks share one fsync
instead of paying one each, and every caller's future resolves only after the commit.
Reads use their own connections so the dashboard never waits behind the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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

log = logging.getLogger("relay.store")

T = TypeVar("T")
_MAX_BATCH = 512
# The writer thread, if it ever stops, is started again after this long (doubling to the
# most below while it keeps stopping); /readyz reports it down meanwhile.
WRITER_RESTART_SECONDS = 0.5
WRITER_RESTART_MAX_SECONDS = 10.0
# What the writer's connection must run with for a commit to be on disk when it returns
# (asserted by tests/store/test_durability.py, shown by /readyz and the benchmark).
DURABLE_PRAGMAS = {"journal_mode": "wal", "synchronous": "full"}
_SYNCHRONOUS = {0: "off", 1: "normal", 2: "full", 3: "extra"}
CHECKPOINT_INTERVAL = 1.0  # seconds between WAL checkpoints
WAL_RESTART_BYTES = 64 * 1024 * 1024
Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


def sqlite_path(url: str) -> Path:
    """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
    if not url.startswith("sqlite:///"):
        raise ValueError("a SQLite URL looks like sqlite:///./data/relay.db")
    return Path(url.removeprefix("sqlite:///"))


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    # Room in the statement cache for the 32 multi-row INSERT texts beside every query.
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=30, cached_statements=256
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk (WAL fsynced) before the caller hears about it.
        conn.execute("PRAGMA synchronous = FULL")
        # Checkpoints run in their own thread (SQLiteStore._checkpoint_loop): done by the
        # writer at the commit that fills the WAL, they stall every request queued behind.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        # When the WAL is rewound, cut the file back (it keeps its high-water mark).
        conn.execute(f"PRAGMA journal_size_limit = {WAL_RESTART_BYTES}")
    return conn


class SQLiteStore:
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="relay-sqlite-read")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_failure: str | None = None  # set while writes fail; /readyz reports it
        self._writer_down: str | None = None  # set while the writer thread is restarting
        self._writer_lock = threading.Lock()
        self._closing = False
        self._inflight: list[Job] = []  # the batch the writer is committing
        self.pragmas: dict[str, str] = {}  # the writer connection's durability settings
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self.checkpoints: Counter[str] = Counter()  # checkpoints run, by mode

    # lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._start_writer(asyncio.get_running_loop(), started)
        await started
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="relay-sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        """Copy committed WAL frames into the database file, off the writer's path.

        PASSIVE never blocks the writer. Under sustained load it may never finish, and the
        WAL is only rewound from its start once one has: when the frames in the WAL pass
        WAL_RESTART_BYTES, a RESTART checkpoint (which holds the writer back while it
        copies what PASSIVE left, a moment's work right after it) rewinds it, and the
        writer then cuts the file back to that size (journal_size_limit).

        The size of the WAL *file* is no measure of this: it stays at its high-water mark
        after a rewind, and RESTARTing on it stalled the writer every interval for good.
        """
        conn = _connect(self.path)
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_INTERVAL):
                with contextlib.suppress(sqlite3.Error):
                    frames = self._checkpoint(conn, "PASSIVE")
                    if frames * page_size > WAL_RESTART_BYTES:
                        self._checkpoint(conn, "RESTART")
            with contextlib.suppress(sqlite3.Error):
                self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> int:
        """Run one checkpoint; the number of frames in the WAL (-1 if it is not in WAL)."""
        _, frames, _ = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        self.checkpoints[mode] += 1
        return int(frames)

    async def close(self) -> None:
        self._closing = True
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
            self._checkpointer = None
        if self._writer is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        self._readers.shutdown(wait=True)
        with self._conns_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    def _start_writer(
        self, loop: asyncio.AbstractEventLoop, started: asyncio.Future[None] | None
    ) -> None:
        self._writer = threading.Thread(
            target=self._supervise, args=(loop, started), name="relay-sqlite-writer", daemon=True
        )
        self._writer.start()

    def _supervise(
        self, loop: asyncio.AbstractEventLoop, started: asyncio.Future[None] | None
    ) -> None:
        """Run the write loop; if it ever stops other than by close(), fail the batch it
        held (503: the senders retry) and start it again after a pause, for good.

        One request's failure never gets here (``_commit_batch`` answers it alone); this
        is the net under a bug in the writer itself, so that it cannot end ingest."""
        pause = WRITER_RESTART_SECONDS
        while True:
            try:
                self._write_loop(loop, started)
                return  # closed, or the first open failed (reported to open())
            except BaseException as exc:  # nothing may end this thread
                started = None
                self._writer_down = (
                    f"the database writer stopped ({type(exc).__name__}: {exc}); "
                    f"restarting in {pause:g} s"
                )
                log.error(
                    "the SQLite writer stopped; restarting it",
                    exc_info=exc,
                    extra={"restart_in_seconds": pause},
                )
                _fail_batch(self._inflight, StoreUnavailable(self._writer_down))
                self._inflight = []  # (kept until answered: _check_writer's net reads it)
            time.sleep(pause)
            pause = min(pause * 2, WRITER_RESTART_MAX_SECONDS)
            if self._closing:
                return

    def _write_loop(
        self, loop: asyncio.AbstractEventLoop, started: asyncio.Future[None] | None
    ) -> None:
        try:
            conn = self._open_writer_connection()
            _migrate(conn)
        except Exception as exc:  # report the failure to open() instead of dying silently
            if started is None:
                raise  # a restart: the supervisor tries again
            loop.call_soon_threadsafe(_settle, started, None, exc)
            return
        self._writer_down = None
        if started is not None:
            loop.call_soon_threadsafe(_settle, started, None, None)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    break
                batch = [job]
                stop = False
                while len(batch) < _MAX_BATCH:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._inflight = batch
                conn = self._write_batch(conn, batch)
                self._inflight = []
                if stop:
                    break
        finally:
            conn.close()

    def _open_writer_connection(self) -> sqlite3.Connection:
        conn = _connect(self.path)
        self.pragmas = writer_pragmas(conn)
        return conn

    def _write_batch(self, conn: sqlite3.Connection, batch: list[Job]) -> sqlite3.Connection:
        """Commit one batch; the connection to use for the next."""
        if self._write_failure is not None:
            # Reopen before the first batch after a failure, not right after it:
            # SQLite opens a file it cannot write read-only, and a connection
            # opened while the disk was read-only stays so.
            conn = self._reconnect(conn)
        try:
            committed = self._commit_batch(conn, batch)
        except Exception as exc:  # a bug in the writer: this batch fails, the writer goes on
            log.exception("the SQLite writer failed a batch", extra={"requests": len(batch)})
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            self._write_failure = f"the last write failed ({type(exc).__name__}: {exc})"
            _fail_batch(batch, StoreUnavailable(self._write_failure))
            return conn
        if committed:
            self._write_failure = None
        else:
            self._write_failure = "the last write failed (disk full or read-only?)"
        return conn

    def _reconnect(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """A failed commit (full disk, file made read-only, I/O error) can leave SQLite's
        connection stuck in that state: open a fresh one, so writes resume as soon as the
        cause is gone, without a restart. Keep the old one if the file cannot be opened."""
        try:
            fresh = self._open_writer_connection()
        except sqlite3.Error:
            return conn
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        return fresh

    @staticmethod
    def _commit_batch(conn: sqlite3.Connection, batch: list[Job]) -> bool:
        """Run every queued job in one transaction and commit once (group commit).

        Webhook inserts are merged into multi-row statements; every other job runs in a
        savepoint so one job's failure does not undo its neighbours' work. False when the
        transaction or a job failed in the database.
        """
        inserts = [(job, job[0]) for job in batch if isinstance(job[0], _InsertJob)]
        others = [job for job in batch if not isinstance(job[0], _InsertJob)]
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

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        self._check_writer()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, future, loop))
        return await future

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = _connect(self.path, readonly=True)
                self._local.conn = conn
                with self._conns_lock:
                    self._reader_conns.append(conn)
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"database error: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    def _check_writer(self) -> None:
        """Raise StoreUnavailable while the writer is down; start it again if its thread
        is gone (the supervisor never lets it end, so this is the last net)."""
        if self._writer is None:
            raise StoreUnavailable("the database writer is not running (the store is not open)")
        if self._writer.is_alive():
            if (down := self._writer_down) is not None:
                raise StoreUnavailable(down)
            return
        with self._writer_lock:
            if self._closing or self._writer.is_alive():
                raise StoreUnavailable("the database writer is not running")
            down = "the database writer thread had ended; restarting it"
            self._writer_down = down
            log.error("the SQLite writer thread had ended; restarting it")
            inflight, self._inflight = self._inflight, []
            _fail_batch(inflight, StoreUnavailable(down))
            self._start_writer(asyncio.get_running_loop(), None)
        raise StoreUnavailable(down)  # (the new thread may already have cleared _writer_down)

    async def ping(self) -> None:
        await self._read(lambda c: c.execute("SELECT 1").fetchone())
        self._check_writer()
        if self._write_failure is not None:
            raise StoreUnavailable(self._write_failure)
        unsafe = {k: v for k, v in self.pragmas.items() if DURABLE_PRAGMAS.get(k) != v}
        if unsafe:
            raise StoreUnavailable(f"the writer's connection is not durable: {unsafe}")

    def durability(self) -> dict[str, str]:
        """The writer connection's durability settings, as SQLite reports them."""
        return dict(self.pragmas)

    # ingest ------------------------------------------------------------------------
    async def insert_events(self, events: list[NewEvent]) -> list[Inserted]:
        # Serialised here, in the request's task: the writer thread then holds the GIL
        # only to bind values, while the event loop goes on with other requests.
        try:
            rows = [queries.event_row(e) for e in events]
        except Exception as exc:
            raise storing_failed(exc, CONTENT_ERRORS) from exc
        result: list[Inserted] = await self._write(_InsertJob(events, rows))
        return result

    # delivery ----------------------------------------------------------------------
    async def claim_due_events(
        self, worker_id: str, now: float, lease_seconds: float, limit: int
    ) -> list[EventRecord]:
        return await self._write(
            lambda c: queries.claim_due_events(c, "?", worker_id, now, lease_seconds, limit)
        )

    async def renew_claims(self, worker_id: str, event_ids: list[str], until: float) -> None:
        if event_ids:
            await self._write(lambda c: queries.renew_claims(c, "?", worker_id, event_ids, until))

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
        return await self._write(
            lambda c: queries.complete_step(
                c, "?", event_id, idx, worker_id, result, contact_id, replaces
            )
        )

    async def mark_step_sending(self, event_id: str, idx: int, worker_id: str) -> bool:
        return await self._write(
            lambda c: queries.mark_step_sending(c, "?", event_id, idx, worker_id)
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
        return await self._write(
            lambda c: queries.fail_step(
                c, "?", event_id, idx, worker_id, error, dead, next_attempt_at, now
            )
        )

    async def give_up_step(self, event_id: str, idx: int, worker_id: str, error: str) -> bool:
        return await self._write(
            lambda c: queries.give_up_step(c, "?", event_id, idx, worker_id, error)
        )

    async def finish_event(
        self, event_id: str, worker_id: str, now: float, *, dead_reason: str | None = None
    ) -> bool:
        return await self._write(
            lambda c: queries.finish_event(c, "?", event_id, worker_id, now, dead_reason)
        )

    async def release_claim(self, event_id: str, worker_id: str, next_attempt_at: float) -> None:
        await self._write(
            lambda c: queries.release_claim(c, "?", event_id, worker_id, next_attempt_at)
        )

    async def record_attempts(self, attempts: list[AttemptRecord]) -> None:
        if attempts:
            await self._write(lambda c: queries.record_attempts(c, "?", attempts))

    # limiter -----------------------------------------------------------------------
    async def reserve_call(self, now: float, ceilings: list[tuple[int, float]]) -> float:
        return await self._write(lambda c: queries.reserve_call(c, "?", now, ceilings))

    async def calls_since(self, moments: list[float]) -> list[int]:
        return await self._read(lambda c: queries.calls_since(c, "?", moments))

    async def set_not_before(self, until: float) -> None:
        await self._write(lambda c: queries.set_not_before(c, "?", until))

    # contact reuse -----------------------------------------------------------------
    async def reused_contact(self, email_key: str, fields_key: str, since: float) -> int | None:
        return await self._read(
            lambda c: queries.reused_contact(c, "?", email_key, fields_key, since)
        )

    async def remember_contact(
        self, email_key: str, fields_key: str, contact_id: int, now: float, keep: float
    ) -> None:
        await self._write(
            lambda c: queries.remember_contact(c, "?", email_key, fields_key, contact_id, now, keep)
        )

    async def forget_contact(self, email_key: str, contact_id: int) -> None:
        await self._write(lambda c: queries.forget_contact(c, "?", email_key, contact_id))

    # oauth -------------------------------------------------------------------------
    async def load_oauth_token(self) -> StoredToken | None:
        return await self._read(lambda c: queries.load_oauth_token(c, "?"))

    async def save_oauth_token(
        self, token: StoredToken, *, previous_refresh_token: str | None
    ) -> bool:
        return await self._write(
            lambda c: queries.save_oauth_token(c, "?", token, previous_refresh_token, time.time())
        )

    # admin sessions ----------------------------------------------------------------
    async def create_admin_session(self, id_hash: str, now: float, expires_at: float) -> None:
        await self._write(lambda c: queries.create_admin_session(c, "?", id_hash, now, expires_at))

    async def admin_session_active(self, id_hash: str, now: float) -> bool:
        return await self._read(lambda c: queries.admin_session_active(c, "?", id_hash, now))

    async def revoke_admin_session(self, id_hash: str) -> None:
        await self._write(lambda c: queries.revoke_admin_session(c, "?", id_hash))

    # operator ----------------------------------------------------------------------
    async def event_payload_text(self, event_id: str) -> str | None:
        return await self._read(lambda c: queries.event_payload_text(c, "?", event_id))

    async def list_events(
        self, flt: EventFilter, limit: int, before_seq: int | None
    ) -> list[EventRecord]:
        return await self._read(lambda c: queries.list_events(c, "?", flt, limit, before_seq))

    async def get_event(self, event_id: str) -> EventRecord | None:
        return await self._read(lambda c: queries.get_event(c, "?", event_id))

    async def requeue(
        self,
        event_id: str,
        *,
        from_start: bool,
        now: float,
        dry_run_steps: bool = False,
        replan: Replanner | None = None,
    ) -> bool:
        return await self._write(
            lambda c: queries.requeue(
                c, "?", event_id, from_start, now, dry_run_steps=dry_run_steps, replan=replan
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
        ids = await self._read(lambda c: queries.requeue_candidates(c, "?", flt, dry_run_steps))
        count = 0
        for start in range(0, len(ids), queries.REQUEUE_BATCH):
            requeue_batch = functools.partial(
                queries.requeue_many,
                ph="?",
                event_ids=ids[start : start + queries.REQUEUE_BATCH],
                now=now,
                from_start=from_start,
                dry_run_steps=dry_run_steps,
                replan=replan,
            )
            count += await self._write(requeue_batch)
        return count

    async def count_by_status(self) -> dict[str, int]:
        return await self._read(lambda c: queries.count_by_status(c, "?"))

    async def dead_groups(self, limit: int) -> list[DeadGroup]:
        return await self._read(lambda c: queries.dead_groups(c, "?", limit))

    async def dead_since(self, since: float, until: float, limit: int) -> list[DeadEvent]:
        return await self._read(lambda c: queries.dead_since(c, "?", since, until, limit))

    async def load_alert_state(self, prefix: str) -> dict[str, tuple[float, float]]:
        return await self._read(lambda c: queries.load_alert_state(c, "?", prefix))

    async def forget_alert_state(self, prefix: str, sent_before: float) -> int:
        return await self._write(lambda c: queries.forget_alert_state(c, "?", prefix, sent_before))

    async def advance_alert_state(
        self, key: str, value: float, now: float, *, expected: float | None = None
    ) -> bool:
        return await self._write(
            lambda c: queries.advance_alert_state(c, "?", key, value, now, expected)
        )

    async def purge_finished(self, before: float, batch: int) -> int:
        return await self._write(lambda c: queries.purge_finished(c, "?", before, batch))


class _InsertJob:
    """Webhook events to insert; the writer merges all queued ones into one statement."""

    __slots__ = ("events", "rows")

    def __init__(self, events: list[NewEvent], rows: list[queries.EventRow]) -> None:
        self.events = events
        self.rows = rows

    def __call__(self, conn: sqlite3.Connection) -> list[Inserted]:
        try:
            return queries.insert_events(conn, "?", self.events, self.rows)
        except sqlite3.Error:
            raise
        except Exception as exc:  # binding a value failed: this request's content
            raise storing_failed(exc, CONTENT_ERRORS) from exc


def writer_pragmas(conn: sqlite3.Connection) -> dict[str, str]:
    """journal_mode and synchronous of a connection, in words (``wal``, ``full``)."""
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    return {"journal_mode": mode, "synchronous": _SYNCHRONOUS.get(level, str(level))}


def _fail_batch(batch: list[Job], error: BaseException) -> None:
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
    if not rows or len(rows) > queries.MAX_ROWS_PER_STATEMENT:
        return False
    try:
        inserted = queries.insert_rows(conn, "?", rows)
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
        results = queries.insert_events(conn, "?", merged, rows)
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
        _settle(future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for version, description, statements in MIGRATIONS:
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have migrated meanwhile.
            if conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone():
                conn.execute("COMMIT")
                continue
            for statement in statements["sqlite"]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (version, description, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
