"""How the SQLite file is named and opened: every connection's settings, and what a
writing connection must report for its commits to be durable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# What the writer's connection must run with for a commit to be on disk when it returns
# (asserted by tests/store/test_durability.py, shown by /readyz and the benchmark).
DURABLE_PRAGMAS = {"journal_mode": "wal", "synchronous": "full"}
SYNCHRONOUS_WORDS = {0: "off", 1: "normal", 2: "full", 3: "extra"}
# Under a flood (~11 000 webhooks/s write ~45 MB of WAL a second) the WAL is rewound each
# time it passes this: a ~15 ms stop of the writer every 2 s. At 256 MiB the stop grew to
# ~38 ms every 5 s, no better; at ordinary rates a PASSIVE checkpoint keeps up.
WAL_RESTART_BYTES = 64 * 1024 * 1024
# The WAL file is cut back at a rewind only beyond this. It grows past WAL_RESTART_BYTES
# by a checkpoint interval's writes before the rewind; cutting it back to that size each
# time cost the writer's next commit ~12 ms (the file's blocks freed, then allocated again).
WAL_FILE_LIMIT = WAL_RESTART_BYTES + 128 * 1024 * 1024


def sqlite_path(url: str) -> Path:
    """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
    if not url.startswith("sqlite:///"):
        raise ValueError("a SQLite URL looks like sqlite:///./data/relay.db")
    return Path(url.removeprefix("sqlite:///"))


def writer_settings() -> list[str]:
    """The settings of every connection that writes: the writer thread's and the ingest
    writer process's (app/store/sqlite_ingest.py)."""
    return [
        "PRAGMA busy_timeout = 30000",
        "PRAGMA journal_mode = WAL",
        # FULL: a commit is on disk (WAL fsynced) before the caller hears about it.
        "PRAGMA synchronous = FULL",
        # Checkpoints run in their own thread (SQLiteDatabase._checkpoint_loop): done by
        # the writer at the commit that fills the WAL, they stall every request behind.
        "PRAGMA wal_autocheckpoint = 0",
        # When the WAL is rewound, cut the file back if it grew past WAL_FILE_LIMIT.
        f"PRAGMA journal_size_limit = {WAL_FILE_LIMIT}",
    ]


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    # Room in the statement cache for the 32 multi-row INSERT texts beside every query.
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=30, cached_statements=256
    )
    conn.row_factory = sqlite3.Row
    for pragma in (
        ["PRAGMA busy_timeout = 30000", "PRAGMA query_only = 1"] if readonly else writer_settings()
    ):
        conn.execute(pragma)
    return conn


def writer_pragmas(conn: sqlite3.Connection) -> dict[str, str]:
    """journal_mode and synchronous of a connection, in words (``wal``, ``full``)."""
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    level = conn.execute("PRAGMA synchronous").fetchone()[0]
    return in_words(mode, level)


def in_words(journal_mode: object, synchronous: object) -> dict[str, str]:
    """The two settings as SQLite reports them (a name, a level), in words."""
    level = int(str(synchronous))
    words = SYNCHRONOUS_WORDS.get(level, str(level))
    return {"journal_mode": str(journal_mode).lower(), "synchronous": words}


def not_durable(pragmas: dict[str, str]) -> dict[str, str]:
    """The settings of ``pragmas`` (in words) that differ from DURABLE_PRAGMAS."""
    return {k: v for k, v in pragmas.items() if DURABLE_PRAGMAS.get(k) != v}
