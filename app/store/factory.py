"""Open the store RELAY_DATABASE_URL names: one SQLStore over SQLite or PostgreSQL."""

from __future__ import annotations

from app.store.base import Store
from app.store.store import SQLStore


def open_store(url: str, *, pool_size: int = 10, ingest: bool = False) -> Store:
    """``ingest``: the store takes webhooks (``relay serve``); on SQLite their rows then
    go to a writer process of their own (app/store/sqlite_ingest.py)."""
    if url.startswith("sqlite:"):
        from app.store.sqlite_db import SQLiteDatabase

        return SQLStore(SQLiteDatabase(url, ingest_process=ingest))
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from app.store.postgres_db import PostgresDatabase

        return SQLStore(PostgresDatabase(url, pool_size=pool_size))
    raise ValueError("RELAY_DATABASE_URL must start with sqlite:/// or postgresql://")
