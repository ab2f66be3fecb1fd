"""Stores for the contract tests: SQLite on a tmp file, PostgreSQL in a fresh schema.

The PostgreSQL tests skip when the server does not answer, unless RELAY_REQUIRE_POSTGRES=1
(CI), where an unreachable server fails them instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from app.store.base import Store
from app.store.factory import open_store
from tests.conftest import postgres_url

StoreFactory = Callable[[], Awaitable[Store]]


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The test server's URL, once it has answered a connection (else skip or fail)."""
    url = postgres_url() or "postgresql://postgres@127.0.0.1:5432/test"
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        message = f"PostgreSQL not reachable at {_without_password(url)}: {exc}".strip()
        if os.environ.get("RELAY_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_schema_url(postgres_server_url: str) -> Iterator[str]:
    """A URL whose connections see only a new, empty schema, dropped after the test."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield with_search_path(postgres_server_url, schema)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'relay.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
async def open_another_store(database_url: str) -> AsyncIterator[StoreFactory]:
    """Open more stores on the same database, as other replicas would; all closed after."""
    opened: list[Store] = []

    async def open_one() -> Store:
        store = open_store(database_url, pool_size=4)
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def store(open_another_store: StoreFactory) -> Store:
    return await open_another_store()


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("options", f"-c search_path={schema}")]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
