"""The relay's SQLite writers take turns on a lock of their own, beside the database.

SQLite lets one connection write at a time. One that finds the database locked sleeps in
its busy handler (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms, then 100 ms a time) and
tries again; it is not woken when the lock is freed. With two writers busy at once, the
ingest writer process (webhooks) and a writer thread (delivery's claims and outcomes, in
``relay serve --workers N`` or a ``relay worker`` beside it), the one that loses a race
keeps losing while the other commits in between its sleeps: measured at 153 sleeps in
10 s, up to 100 ms each, in the ingest process under a flood (docs/performance.md).

Every relay writer therefore takes an exclusive ``flock`` on ``<database>-turn`` for each
write transaction. The kernel wakes the next writer as the last one lets go, so SQLite's
busy handler is left to writers that are not the relay's (the ``sqlite3`` shell, a
backup). The lock goes with its holder: a writer killed mid-commit frees it.

The ingest writer process (app/store/sqlite_ingest_child.py) takes the same lock in a few
lines of its own: it runs on the standard library alone. The file is opened read-only
(``flock`` needs no more), so writers running as other users share it as they share the
database.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from types import TracebackType

log = logging.getLogger("relay.store")
TURN_FLAGS = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC


def turn_path(database: Path) -> str:
    """The lock file of the writers of ``database``."""
    return f"{database}-turn"


class WriteTurns:
    """``with turns:`` around one write transaction: the caller's turn among the relay's
    writers. Without a lock file (a directory it may not create files in) every turn is
    granted at once, and SQLite's busy handler keeps the writers apart as before."""

    def __init__(self, database: Path) -> None:
        self.path = turn_path(database)
        self._fd: int | None = None

    def open(self) -> None:
        """Open the lock file (created if need be, in the database's directory)."""
        if self._fd is not None:
            return
        try:
            self._fd = os.open(self.path, TURN_FLAGS, 0o644)
        except OSError as exc:
            log.warning(
                "no lock file for the SQLite writers' turns: they wait in SQLite's busy handler",
                extra={"path": self.path, "error": str(exc)},
            )

    def __enter__(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
