"""The SQLite ingest writer process: commits new webhooks' rows for ``relay serve``.

Run by ``app.store.sqlite_ingest`` as ``python -I -S <this file>``: the standard library
only, so it starts in ~30 ms and shares nothing with the server but the database file.
Why a process: a writer thread takes the server's GIL back after each SQLite call, and
those hand-overs cost the event loop ~10% of its rate (docs/performance.md, "Register").

The protocol, on stdin and stdout: frames of a 4-byte big-endian length and a pickle.
- The server's first frame is the set-up: ``{"path", "turn", "pragmas", "insert_sql",
  "max_rows"}`` (``turn``: the lock file the relay's writers take turns on, held for
  each commit; app/store/sqlite_turns.py). The first answer is ``{"pragmas": {...}}``
  (the connection's durability settings, read back) or ``{"error": "..."}``.
- Then each frame from the server is a list of ``(request id, rows)``; rows ``None``
  asks for a WAL rewind (a RESTART checkpoint) once the frame's rows are committed.
- Each answer is a list of ``(request id, stored)``: ``stored`` is True when every row of
  the frame went into the database in one commit, now on disk. False when the rows
  could not all be stored: the server then takes those requests to its writer thread,
  whose transaction tells each request what happened (a duplicate, a row that would not
  bind, the database down), and finds there any row that was stored. An answer
  ``(0, True)`` says the WAL was rewound.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import sqlite3
import struct
import sys
from collections.abc import Iterator
from typing import Any

HEAD = struct.Struct("!I")
READ_BYTES = 1 << 20


def frame(value: Any) -> bytes:
    blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEAD.pack(len(blob)) + blob


class Frames:
    """Frames out of a byte stream read in pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self._buffer += data
        out = []
        while len(self._buffer) >= HEAD.size:
            (size,) = HEAD.unpack_from(self._buffer)
            end = HEAD.size + size
            if len(self._buffer) < end:
                break
            out.append(pickle.loads(self._buffer[HEAD.size : end]))
            del self._buffer[:end]
        return out


def commit(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], setup: dict[str, Any]) -> bool:
    """Insert ``rows`` in one commit; True when every one was inserted. A statement that
    fails stores nothing (its transaction is rolled back); rows a conflict skipped leave
    the others stored, which the server's writer then finds under their own ids."""
    max_rows: int = setup["max_rows"]
    chunks = [rows[i : i + max_rows] for i in range(0, len(rows), max_rows)]
    inserted = 0
    try:
        if len(chunks) > 1:
            conn.execute("BEGIN IMMEDIATE")
        for chunk in chunks:
            sql = setup["insert_sql"][len(chunk)]
            inserted += conn.execute(sql, [v for row in chunk for v in row]).rowcount
        if conn.in_transaction:
            conn.execute("COMMIT")
    except Exception:  # a database error, or a value that would not bind
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        return False
    return inserted == len(rows)


def take_turns(path: str) -> int | None:
    """The lock file the relay's writers take turns on (app/store/sqlite_turns.py); None
    if it cannot be opened: SQLite's busy handler then keeps the writers apart."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None


@contextlib.contextmanager
def turn_of(turn: int | None) -> Iterator[None]:
    """This writer's turn among the relay's: one write transaction."""
    if turn is None:
        yield
        return
    fcntl.flock(turn, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(turn, fcntl.LOCK_UN)


def run(conn: sqlite3.Connection, requests: list[Any], setup: dict[str, Any]) -> list[Any]:
    """Commit the rows of ``requests`` at once, then rewind the WAL if one asks: the
    answers."""
    inserts = [(rid, rows) for rid, rows in requests if rows is not None]
    answers: list[tuple[int, bool]] = []
    if inserts:
        stored = commit(conn, [row for _, rows in inserts for row in rows], setup)
        answers = [(rid, stored) for rid, _ in inserts]
    if len(inserts) < len(requests):  # a rewind was asked for
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            answers.append((0, True))
        except sqlite3.Error:
            answers.append((0, False))
    return answers


def serve(setup: dict[str, Any], read: Any, write: Any) -> None:
    conn = sqlite3.connect(setup["path"], isolation_level=None, timeout=30, cached_statements=64)
    for pragma in setup["pragmas"]:
        conn.execute(pragma)
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    level = conn.execute("PRAGMA synchronous").fetchone()[0]
    write(frame({"pragmas": {"journal_mode": mode, "synchronous": level}}))  # as read
    frames = Frames()
    turn = take_turns(setup["turn"])
    try:
        while data := read(READ_BYTES):
            requests = [item for batch in frames.feed(data) for item in batch]
            if not requests:
                continue
            with turn_of(turn):
                answers = run(conn, requests, setup)
            write(frame(answers))
    finally:
        conn.close()


def main() -> None:
    def read(size: int) -> bytes:
        return os.read(0, size)

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]

    frames = Frames()
    setups: list[Any] = []
    while not setups and (data := read(READ_BYTES)):  # the set-up frame comes alone
        setups = frames.feed(data)
    if not setups:
        return
    try:
        serve(setups[0], read, write)
    except BrokenPipeError:  # the server is gone: what was committed stays committed
        return
    except Exception as exc:  # the server reads why, then sees the pipe close
        with contextlib.suppress(OSError):
            write(frame({"error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)


if __name__ == "__main__":
    main()
