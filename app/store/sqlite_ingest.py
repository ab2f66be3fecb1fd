"""New webhooks' rows, committed by a writer process beside ``relay serve`` (SQLite).

``IngestProcess`` runs ``app/store/sqlite_ingest_child.py`` and hands it each request's
rows; the request is answered once the child says they are on disk. What the child
cannot store in one go (a duplicate, a row that will not bind, the database down), and
every request while the child is not running, goes to the writer thread instead
(``SQLiteDatabase.write``), which finds there any row the child did store: a request is
answered from one of the two, and its rows are inserted at most once, whatever dies when.

Why a process: docs/performance.md, "Register" (the writer thread's GIL hand-overs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.store.queries import events as event_sql
from app.store.sqlite_connect import in_words
from app.store.sqlite_ingest_child import Frames, frame
from app.store.sqlite_turns import turn_path

log = logging.getLogger("relay.store")

CHILD = str(Path(__file__).with_name("sqlite_ingest_child.py"))
START_SECONDS = 30.0  # for the child to open the database (a busy file waits up to 30 s)
STOP_SECONDS = 10.0  # for the child to answer what it holds and exit, once told to stop
RESTART_SECONDS = 0.5  # after the child stops, the wait before one is started again
RESTART_MAX_SECONDS = 10.0  # (doubling while it keeps stopping)

Rows = list[tuple[Any, ...]]


class IngestProcess:
    """The writer process, driven from the event loop that started it.

    ``on_rewound(done)`` is called on that loop when a WAL rewind asked of the child has
    run (``done``) or will not run (it stopped)."""

    def __init__(self, path: Path, pragmas: list[str], on_rewound: Callable[[bool], None]) -> None:
        self.setup = {
            "path": str(path),
            "turn": turn_path(path),
            "pragmas": pragmas,
            "insert_sql": {
                rows: event_sql.insert_sql(rows, "?")
                for rows in range(1, event_sql.MAX_ROWS_PER_STATEMENT + 1)
            },
            "max_rows": event_sql.MAX_ROWS_PER_STATEMENT,
        }
        self.on_rewound = on_rewound
        self.pragmas: dict[str, str] = {}  # the child connection's durability, in words
        self.alive = False  # taking requests
        self.starts = 0  # children started (1 unless one stopped)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: Any = None
        self._frames = Frames()
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._exited: asyncio.Future[None] | None = None
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._pending: list[tuple[int, Rows | None]] = []
        self._next_id = 0
        self._stopping = False
        self._down_at = 0.0
        self._pause = RESTART_SECONDS
        self._restart: asyncio.Task[None] | None = None
        self._child = 0  # which child the callbacks are about: only the latest one counts

    async def start(self) -> None:
        """Start the child and wait for its connection; raises if it cannot open one."""
        loop = self._loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._exited = loop.create_future()
        self._frames = Frames()
        self._child += 1
        child = self._child
        transport, _ = await loop.subprocess_exec(
            lambda: _ChildProtocol(self, child),
            sys.executable,
            "-I",
            "-S",
            CHILD,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # a traceback goes to the server's own stderr
        )
        self._transport = transport
        self._stdin = transport.get_pipe_transport(0)
        self._stdin.write(frame(self.setup))
        self.starts += 1
        try:
            answer = await asyncio.wait_for(asyncio.shield(self._ready), START_SECONDS)
        except BaseException:
            self._kill()
            raise
        if "error" in answer:
            self._kill()
            raise RuntimeError(f"the SQLite ingest writer could not start: {answer['error']}")
        self.pragmas = in_words(**answer["pragmas"])
        self.alive = True
        self._pause = RESTART_SECONDS

    def submit(self, rows: Rows) -> asyncio.Future[bool] | None:
        """Hand ``rows`` to the child: a future of whether it stored them all, or None
        when it cannot take them (not running, or called from another event loop)."""
        loop = self._loop
        if loop is None or asyncio.get_running_loop() is not loop:
            return None
        if not self.alive:
            self._restart_later()
            return None
        self._next_id += 1
        future = loop.create_future()
        self._waiting[self._next_id] = future
        self._send((self._next_id, rows))
        return future

    def rewind_threadsafe(self) -> None:
        """Ask the child to rewind the WAL between two commits (from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.on_rewound(False)
            return
        loop.call_soon_threadsafe(self._ask_rewind)

    async def stop(self) -> None:
        """Let the child answer what it holds, then end it."""
        self._stopping = True
        if self._restart is not None:
            self._restart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._restart
        if self._transport is None or self._exited is None:
            self.alive = False
            return
        self._flush()
        self.alive = False
        self._stdin.close()  # the child reads to the end, answers, and exits
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), STOP_SECONDS)
        except TimeoutError:
            self._kill()
        self._transport.close()

    # The child's side of the pipe ---------------------------------------------------------

    def _send(self, item: tuple[int, Rows | None]) -> None:
        if not self._pending:  # one write for what a turn of the loop hands over
            self._loop.call_soon(self._flush)  # type: ignore[union-attr]
        self._pending.append(item)

    def _flush(self) -> None:
        if self._pending and self.alive:
            self._stdin.write(frame(self._pending))
        self._pending = []

    def _ask_rewind(self) -> None:
        if self.alive:
            self._send((0, None))
        else:
            self.on_rewound(False)

    def _received(self, data: bytes) -> None:
        for answer in self._frames.feed(data):
            if isinstance(answer, dict):
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(answer)
                else:
                    log.error("the SQLite ingest writer failed: %s", answer.get("error"))
                continue
            for request_id, stored in answer:
                if request_id == 0:
                    self.on_rewound(stored)
                elif (future := self._waiting.pop(request_id, None)) and not future.done():
                    future.set_result(stored)

    def _lost(self, *, exited: bool) -> None:
        """The child's output ended or it exited: every request still waiting goes to
        the writer thread."""
        if self._ready is not None and not self._ready.done():
            self._ready.set_result({"error": "the process ended before it opened the database"})
        if exited and self._exited is not None and not self._exited.done():
            self._exited.set_result(None)
        if self.alive:
            log.error(
                "the SQLite ingest writer process stopped; the writer thread takes its "
                "requests until it is started again",
                extra={"restart_in_seconds": self._pause},
            )
            self.alive = False
            self._down_at = time.monotonic()
            if self._pending and any(rows is None for _, rows in self._pending):
                self.on_rewound(False)
            self._pending = []
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_result(False)

    def _kill(self) -> None:
        if self._transport is not None and self._transport.get_returncode() is None:
            with contextlib.suppress(ProcessLookupError):
                self._transport.kill()

    def _restart_later(self) -> None:
        if self._stopping or self._restart is not None or self._loop is None:
            return
        if time.monotonic() - self._down_at < self._pause:
            return
        self._restart = self._loop.create_task(self._start_again())

    async def _start_again(self) -> None:
        try:
            if self._transport is not None:
                self._transport.close()
            await self.start()
            log.info("the SQLite ingest writer process started again")
        except Exception as exc:
            self._down_at = time.monotonic()
            self._pause = min(self._pause * 2, RESTART_MAX_SECONDS)
            log.error("the SQLite ingest writer process could not start again: %s", exc)
        finally:
            self._restart = None


class _ChildProtocol(asyncio.SubprocessProtocol):
    """One child's pipes. Once a child is replaced, what its pipes still report (its
    exit, a pipe closing late) is about a process gone, and must not touch the new one."""

    def __init__(self, owner: IngestProcess, child: int) -> None:
        self.owner = owner
        self.child = child

    def _current(self) -> bool:
        return self.child == self.owner._child

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        if fd == 1 and isinstance(data, bytes) and self._current():
            self.owner._received(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1 and self._current():
            self.owner._lost(exited=False)

    def process_exited(self) -> None:
        if self._current():
            self.owner._lost(exited=True)
