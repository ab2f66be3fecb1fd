"""The embedded default: one SQLite file in WAL mode with full sync.

All writes go through one writer thread that commits whatever has queued up since its
last commit in a single transaction (group commit): concurrent webhooks share one fsync
instead of paying one each, and every caller's future resolves only after the commit.
Reads use their own connections so the dashboard never waits behind the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from app.domain.events import Inserted, NewEvent
from app.store.base import CONTENT_ERRORS, StoreUnavailable, storing_failed
from app.store.dialect import SQLITE
from app.store.migrations import migrate_sqlite
from app.store.queries import events as event_sql
from app.store.sqlite_commit import InsertJob, Job, commit_batch, fail_batch, settle
from app.store.sqlite_connect import (
    WAL_RESTART_BYTES,
    connect,
    not_durable,
    sqlite_path,
    writer_pragmas,
    writer_settings,
)
from app.store.sqlite_ingest import IngestProcess
from app.store.sqlite_turns import WriteTurns

log = logging.getLogger("relay.store")

T = TypeVar("T")
_MAX_BATCH = 512
# The writer thread, if it ever stops, is started again after this long (doubling to the
# most below while it keeps stopping); /readyz reports it down meanwhile.
WRITER_RESTART_SECONDS = 0.5
WRITER_RESTART_MAX_SECONDS = 10.0
CHECKPOINT_INTERVAL = 1.0  # seconds between WAL checkpoints


class _RewindWal:
    """Queued to the writer by the checkpointer: run the RESTART checkpoint that rewinds
    the WAL on the writer's own connection, between two batches."""


REWIND_WAL = _RewindWal()


class SQLiteDatabase:
    dialect = SQLITE

    def __init__(self, url: str, *, ingest_process: bool = False) -> None:
        """``ingest_process``: new webhooks' rows go to a writer process of their own
        (``relay serve``; app/store/sqlite_ingest.py), the rest to the writer thread."""
        self.path = sqlite_path(url)
        self._turns = WriteTurns(self.path)
        self.ingest: IngestProcess | None = None
        self._ingest_process = ingest_process
        self._jobs: queue.SimpleQueue[Job | _RewindWal | None] = queue.SimpleQueue()
        self._rewind_queued = threading.Event()  # REWIND_WAL is in the queue
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
        self._turns.open()
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._start_writer(asyncio.get_running_loop(), started)
        await started
        if self._ingest_process:
            await self._start_ingest()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="relay-sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    async def _start_ingest(self) -> None:
        """Start the ingest writer process; without one, the writer thread takes every
        webhook (slower, as safe)."""
        ingest = IngestProcess(self.path, writer_settings(), self._rewound)
        try:
            await ingest.start()
        except Exception as exc:
            log.error("the SQLite ingest writer process did not start: %s", exc)
            return
        if unsafe := not_durable(ingest.pragmas):
            log.error("the SQLite ingest writer process is not durable: %s", unsafe)
            await ingest.stop()
            return
        self.ingest = ingest

    def _rewound(self, done: bool) -> None:
        """The ingest process ran the WAL rewind the checkpointer asked for (or cannot)."""
        if done:
            self.checkpoints["RESTART"] += 1
        self._rewind_queued.clear()

    def _queue_rewind(self) -> None:
        """From the checkpointer: the writer that commits webhooks rewinds the WAL."""
        self._rewind_queued.set()
        if self.ingest is not None and self.ingest.alive:
            self.ingest.rewind_threadsafe()
        else:
            self._jobs.put(REWIND_WAL)

    def _checkpoint_loop(self) -> None:
        """Copy committed WAL frames into the database file, off the writer's path.

        PASSIVE never blocks the writer. Under sustained load it may never finish, and the
        WAL is only rewound from its start once one has: when the frames in the WAL pass
        WAL_RESTART_BYTES, a RESTART checkpoint (which holds the writer back while it
        copies what PASSIVE left, a moment's work right after it) rewinds it, and the
        writer then cuts the file back to WAL_FILE_LIMIT if it is larger
        (journal_size_limit). The writer that commits webhooks (the ingest process, if
        there is one) runs that RESTART itself, between two batches:
        run from here, it held the writer's commit in SQLite's busy handler, whose sleeps
        (1, 2, 5, 10, 15 ms…) overshot a 15 ms checkpoint to a 31 ms stall of every
        request (docs/performance.md).

        The size of the WAL *file* is no measure of this: it stays at its high-water mark
        after a rewind, and RESTARTing on it stalled the writer every interval for good.
        """
        conn = connect(self.path)
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_INTERVAL):
                with contextlib.suppress(sqlite3.Error):
                    frames = self._checkpoint(conn, "PASSIVE")
                    if frames * page_size > WAL_RESTART_BYTES and not self._rewind_queued.is_set():
                        self._queue_rewind()
            with contextlib.suppress(sqlite3.Error):
                self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _rewind_wal(self, conn: sqlite3.Connection) -> None:
        """On the writer's thread: rewind the WAL; a failure waits for the next request."""
        self._rewind_queued.clear()
        with self._turns, contextlib.suppress(sqlite3.Error):
            self._checkpoint(conn, "RESTART")

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> int:
        """Run one checkpoint; the number of frames in the WAL (-1 if it is not in WAL)."""
        _, frames, _ = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        self.checkpoints[mode] += 1
        return int(frames)

    async def close(self) -> None:
        if self.ingest is not None:
            await self.ingest.stop()  # what it cannot answer goes to the writer, still open
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
        self._turns.close()
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

        One request's failure never gets here (``commit_batch`` answers it alone); this
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
                fail_batch(self._inflight, StoreUnavailable(self._writer_down))
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
            migrate_sqlite(conn)
        except Exception as exc:  # report the failure to open() instead of dying silently
            if started is None:
                raise  # a restart: the supervisor tries again
            loop.call_soon_threadsafe(settle, started, None, exc)
            return
        self._writer_down = None
        if started is not None:
            loop.call_soon_threadsafe(settle, started, None, None)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    break
                if isinstance(job, _RewindWal):
                    self._rewind_wal(conn)
                    continue
                batch = [job]
                stop = rewind = False
                while len(batch) < _MAX_BATCH:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    if isinstance(more, _RewindWal):
                        rewind = True
                        break
                    batch.append(more)
                self._inflight = batch
                conn = self._write_batch(conn, batch)
                self._inflight = []
                if rewind:
                    self._rewind_wal(conn)
                if stop:
                    break
        finally:
            conn.close()

    def _open_writer_connection(self) -> sqlite3.Connection:
        conn = connect(self.path)
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
            with self._turns:
                committed = commit_batch(conn, batch)
        except Exception as exc:  # a bug in the writer: this batch fails, the writer goes on
            log.exception("the SQLite writer failed a batch", extra={"requests": len(batch)})
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            self._write_failure = f"the last write failed ({type(exc).__name__}: {exc})"
            fail_batch(batch, StoreUnavailable(self._write_failure))
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

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        self._check_writer()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, future, loop))
        return await future

    async def write_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``write``: the writer commits every queued job together, so nothing waits
        behind another's transaction for more than one batch."""
        return await self.write(fn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = connect(self.path, readonly=True)
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
            fail_batch(inflight, StoreUnavailable(down))
            self._start_writer(asyncio.get_running_loop(), None)
        raise StoreUnavailable(down)  # (the new thread may already have cleared _writer_down)

    async def ping(self) -> None:
        await self.read(lambda c: c.execute("SELECT 1").fetchone())
        self._check_writer()
        if self._write_failure is not None:
            raise StoreUnavailable(self._write_failure)
        if unsafe := not_durable(self.pragmas):
            raise StoreUnavailable(f"the writer's connection is not durable: {unsafe}")

    def durability(self) -> dict[str, str]:
        """The writer connection's durability settings, as SQLite reports them."""
        return dict(self.pragmas)

    def ingest_writer_up(self) -> bool | None:
        if not self._ingest_process:
            return None
        return self.ingest is not None and self.ingest.alive

    async def insert_events(self, events: list[NewEvent]) -> list[Inserted]:
        # Serialised here, in the request's task: the writer thread then holds the GIL
        # only to bind values, while the event loop goes on with other requests.
        try:
            rows = [event_sql.event_row(e) for e in events]
        except Exception as exc:
            raise storing_failed(exc, CONTENT_ERRORS) from exc
        ingest = self.ingest
        if ingest is not None and (stored := ingest.submit(rows)) is not None and await stored:
            return [Inserted(e.id, created=True) for e in events]
        result: list[Inserted] = await self.write(InsertJob(events, rows))
        return result
