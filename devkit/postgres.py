"""A PostgreSQL to test or measure against: whether the server answers, and a fresh schema
of its own for each test or benchmark run."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The PostgreSQL server to test against (tests skip where it does not answer)."""
    return os.environ.get("RELAY_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


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
