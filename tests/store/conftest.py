"""Stores for the contract tests, on both databases (``database_url`` in tests/conftest.py:
SQLite on a tmp file, PostgreSQL in a fresh schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from app.store.base import Store
from app.store.factory import open_store

StoreFactory = Callable[[], Awaitable[Store]]


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
