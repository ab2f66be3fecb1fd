"""Open the store RELAY_DATABASE_URL names: one SQLStore over SQLite or PostgreSQL."""

from __future__ import annotations

from app.store.base import Store
from app.store.store import SQLStore


def open_store(url: str, *, pool_size: int = 10) -> Store:
    if url.startswith("sqlite:"):
        from app.store.sqlite_db import SQLiteDatabase

        return SQLStore(SQLiteDatabase(url))
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from app.store.postgres_db import PostgresDatabase

        return SQLStore(PostgresDatabase(url, pool_size=pool_size))
    raise ValueError("RELAY_DATABASE_URL must start with sqlite:/// or postgresql://")
