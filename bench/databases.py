"""The databases the ingest benchmark writes to: a fresh SQLite file, and a fresh schema
of a PostgreSQL server when one answers; and how many events each holds."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


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


def postgres_unreachable_reason(url: str) -> str | None:
    """None when the server answers; otherwise why not, for the report."""
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {_without_password(url)}: {str(exc).strip()}"
    return None


@contextmanager
def fresh_postgres_schema(url: str, *, prefix: str = "bench_") -> Iterator[str]:
    """A URL whose connections see only a new, empty schema, dropped afterwards (the
    benchmark's, and every PostgreSQL test's)."""
    schema = f"{prefix}{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def count_postgres_events(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``?options=-c search_path=<schema>``: its connections see only that."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("options", f"-c search_path={schema}")]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
