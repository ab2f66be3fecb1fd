"""Pick the store implementation from RELAY_DATABASE_URL."""

from __future__ import annotations

from app.store.base import Store


def open_store(url: str, *, pool_size: int = 10) -> Store:
    if url.startswith("sqlite:"):
        from app.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from app.store.postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size)
    raise ValueError("RELAY_DATABASE_URL must start with sqlite:/// or postgresql://")
