"""The databases the ingest benchmark writes to: a fresh SQLite file, and a fresh schema
of a PostgreSQL server when one answers; how many events each holds, which event ids,
and the settings that make their commits durable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

# Shared with the tests (devkit/): the server's URL, whether it answers, a fresh schema.
from devkit.postgres import DEFAULT_POSTGRES_URL as DEFAULT_POSTGRES_URL
from devkit.postgres import fresh_postgres_schema as fresh_postgres_schema
from devkit.postgres import postgres_unreachable_reason as postgres_unreachable_reason


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def count_sqlite_events(path: Path) -> int:
    """Rows in ``events``, read through the WAL like any other reader."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    finally:
        conn.close()
    return int(row[0])


def sqlite_event_ids(path: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM events")}
    finally:
        conn.close()


def postgres_event_ids(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM events")}


def sqlite_file_durability(path: Path) -> dict[str, str]:
    """What the database file says (journal_mode is stored in it; synchronous is each
    connection's own, so the relay's writer reports its own through /readyz)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()
    return {"file_journal_mode": mode, "filesystem": filesystem_of(path)}


def postgres_durability(url: str) -> dict[str, str]:
    """The server's durability settings as the relay's connections (same URL) see them,
    and the filesystem of its data directory when that is on this machine."""
    names = ("synchronous_commit", "fsync", "wal_sync_method", "full_page_writes")
    with psycopg.connect(url, autocommit=True) as conn:
        found = {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in names}  # type: ignore[index]
        try:
            data_directory = str(conn.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
        except psycopg.Error:  # not a superuser nor pg_read_all_settings
            data_directory = ""
    found["data_directory"] = data_directory or "(not readable by this user)"
    found["data_directory_filesystem"] = (
        filesystem_of(Path(data_directory)) if data_directory else "unknown"
    )
    return found


def filesystem_of(path: Path) -> str:
    """``fstype source mountpoint`` of the mount holding ``path`` (from /proc/mounts), or
    why not known — a tmpfs would make every fsync a no-op."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown (no /proc/mounts)"
    target = str(path.resolve() if path.exists() else path)
    best: list[str] | None = None
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[1])):
            best = fields
    if best is None:
        return "unknown"
    return f"{best[2]} {best[0]} {best[1]}"


def count_postgres_events(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    return int(row[0]) if row else 0
