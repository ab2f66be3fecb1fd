"""What the store needs from a database: transactions, and a fast path for webhooks.

``SQLStore`` (app.store.store) runs every query through this interface;
``SQLiteDatabase`` (a writer thread with group commit) and ``PostgresDatabase`` (a pool
with insert flushers) implement it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from app.domain.events import Inserted, NewEvent
from app.store.dialect import Dialect

T = TypeVar("T")
# A DB-API connection inside a transaction, rows accessed by name: sqlite3.Connection
# (row_factory sqlite3.Row) or psycopg.Connection (dict_row).
Conn = Any


class Database(Protocol):
    dialect: Dialect

    async def open(self) -> None:
        """Connect and apply missing migrations; StoreUnavailable when it cannot."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """StoreUnavailable unless writes are possible and durable right now."""

    def durability(self) -> dict[str, str]:
        """The settings that make a commit durable, as the database reports them."""

    def ingest_writer_up(self) -> bool | None:
        """Whether the writer process that commits webhooks runs (SQLite under ``relay
        serve``); None where there is none."""

    async def write(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` in a write transaction; its result once committed, on disk."""

    async def write_now(self, fn: Callable[[Conn], T]) -> T:
        """``write``, for what a Keap call waits on between its rate-limit slot and its
        sending (the reservation, the "sending" mark): not queued behind other work."""

    async def read(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` on a connection that sees committed data."""

    async def insert_events(self, events: list[NewEvent]) -> list[Inserted]:
        """Store one request's webhooks, committed together with concurrent requests'
        (group commit); only this request fails if its content cannot be stored."""
