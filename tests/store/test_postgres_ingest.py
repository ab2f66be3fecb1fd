"""PostgreSQL's ingest path (app/store/pg_ingest.py): one statement a group commit, on
the event loop, with the transactional path behind it for whatever that statement
cannot settle — here, connections lost under it and a store used from another loop."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import quote

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from app.domain.events import NewEvent
from app.store.base import StoreUnavailable
from app.store.pg_ingest import (
    ALL_CONTACTS,
    CONTACT_LOCKS,
    MAX_CONTACT_LOCKS,
    OVERLAP_MIN_REQUESTS,
    Outcome,
    lock_spec,
)
from app.store.postgres_db import PostgresDatabase
from app.store.store import SQLStore
from tests.store.test_store_contract import make_event


def named(url: str) -> tuple[str, str]:
    """``url`` with an application_name of its own, so the test finds its connections."""
    name = f"relay-test-{secrets.token_hex(4)}"
    return f"{url}&application_name={quote(name)}", name


def terminate(url: str, application_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


def PostgresStore(url: str, *, pool_size: int) -> SQLStore:
    """The store over PostgreSQL, as open_store builds it; ``.db`` is the database."""
    return SQLStore(PostgresDatabase(url, pool_size=pool_size))


async def test_connections_lost_under_the_ingest_path_cost_no_webhook(
    postgres_schema_url: str,
) -> None:
    """A server restart (here: every connection of the store terminated) breaks the
    ingest pool's connections: the batches that find them broken are stored by the
    transactional path on fresh connections, and the pool replaces the broken ones."""
    url, name = named(postgres_schema_url)
    store = PostgresStore(url, pool_size=4)
    await store.open()
    fell_back: list[int] = []
    fallback = store.db._ingest._fallback

    async def counted(requests: list[list[NewEvent]]) -> list[Outcome]:
        fell_back.append(len(requests))
        return await fallback(requests)

    store.db._ingest._fallback = counted
    try:
        await store.insert_events([make_event()])  # the ingest pool is open
        assert fell_back == []
        assert terminate(postgres_schema_url, name) >= 2
        for _ in range(3):  # more batches than the ingest pool has connections
            events = [make_event() for _ in range(4)]
            results = await asyncio.gather(*(store.insert_events([e]) for e in events))
            assert [r[0].id for r in results] == [e.id for e in events]
            assert all(r[0].created for r in results)
        for event in events:
            assert await store.get_event(event.id) is not None
        assert fell_back, "no batch met a broken connection"
        fell_back.clear()
        await asyncio.gather(*(store.insert_events([make_event()]) for _ in range(4)))
        assert fell_back == []  # the pool has replaced them
    finally:
        await store.close()


def lock_waits(url: str, application_name: str) -> int:
    """How many of the named connections wait for a lock."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND wait_event_type = 'Lock'",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def wait_for_lock_waits(url: str, application_name: str, count: int) -> None:
    for _ in range(200):
        if lock_waits(url, application_name) == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{lock_waits(url, application_name)} lock waits, not {count}")


async def test_requests_wait_for_the_batch_in_flight_until_a_batch_worth_waits(
    postgres_schema_url: str,
) -> None:
    """While a batch is in flight, the requests that arrive wait and go together after it
    (a second connection sending each few rows made batches of 8.5 rows under load); once
    OVERLAP_MIN_REQUESTS wait, a second batch goes out beside the first."""
    url, name = named(postgres_schema_url)
    store = PostgresStore(url, pool_size=4)  # two ingest connections
    await store.open()
    try:
        await store.insert_events([make_event(email="warm@example.com")])  # the pool opens
        with psycopg.connect(postgres_schema_url, autocommit=True) as blocker:
            # Every insert takes ALL_CONTACTS shared: held exclusive, it holds them back.
            blocker.execute("SELECT pg_advisory_lock(%s, 0)", (ALL_CONTACTS,))
            first = asyncio.ensure_future(store.insert_events([make_event(email="a@x.test")]))
            await wait_for_lock_waits(postgres_schema_url, name, 1)
            few = [
                asyncio.ensure_future(store.insert_events([make_event(email=f"b{n}@x.test")]))
                for n in range(OVERLAP_MIN_REQUESTS - 1)
            ]
            await asyncio.sleep(0.3)
            assert lock_waits(postgres_schema_url, name) == 1  # they wait in the process
            last = asyncio.ensure_future(store.insert_events([make_event(email="c@x.test")]))
            await wait_for_lock_waits(postgres_schema_url, name, 2)  # a batch worth: sent
            blocker.execute("SELECT pg_advisory_unlock(%s, 0)", (ALL_CONTACTS,))
        results = await asyncio.gather(first, *few, last)
        assert all(result[0].created for result in results)
        for result in results:
            assert await store.get_event(result[0].id) is not None
    finally:
        await store.close()


async def test_a_duplicate_in_a_batch_is_named_by_the_first_stored(
    postgres_schema_url: str,
) -> None:
    store = PostgresStore(postgres_schema_url, pool_size=4)
    await store.open()
    try:
        first = make_event()
        await store.insert_events([first])
        again = make_event(dedupe_key=first.dedupe_key)
        fresh = make_event()
        results = await asyncio.gather(store.insert_events([fresh]), store.insert_events([again]))
        assert [(r[0].id, r[0].created) for r in results] == [
            (fresh.id, True),
            (first.id, False),
        ]
    finally:
        await store.close()


def test_a_store_used_from_another_event_loop_still_stores(postgres_schema_url: str) -> None:
    """The ingest pool belongs to the loop of the first insert; from another loop the
    transactional path serves, and closing from there neither fails nor hangs."""
    store = PostgresStore(postgres_schema_url, pool_size=2)
    first, second = make_event(), make_event()

    async def open_and_insert() -> None:
        await store.open()
        await store.insert_events([first])

    async def insert_and_close() -> None:
        try:
            assert (await store.insert_events([second]))[0].created
            assert await store.get_event(first.id) is not None
        finally:
            await asyncio.wait_for(store.close(), timeout=15)

    asyncio.run(open_and_insert())
    asyncio.run(insert_and_close())


def test_lock_spec_shared_lock_then_each_contact_or_one_exclusive_lock() -> None:
    assert lock_spec([make_event(email=None)]) == ([], [], [])
    spaces, keys, shared = lock_spec([make_event(email=e) for e in ("B@x.io", "a@x.io", "b@x.io")])
    assert spaces == [ALL_CONTACTS, CONTACT_LOCKS, CONTACT_LOCKS]  # B@ and b@: one contact
    assert keys[0] == 0
    assert keys[1:] == sorted(keys[1:])
    assert shared == [True, False, False]
    burst = [make_event(email=f"c{i}@x.io") for i in range(MAX_CONTACT_LOCKS + 1)]
    assert lock_spec(burst) == ([ALL_CONTACTS], [0], [False])


async def test_a_batch_without_an_ingest_connection_is_answered(
    postgres_schema_url: str,
) -> None:
    """The flusher holds one connection from batch to batch; when none can be had, the
    batch still gets an answer: 503 for a pool that timed out (the fallback would wait as
    long), the transactional path for an ingest pool that failed otherwise."""
    store = PostgresStore(postgres_schema_url, pool_size=4)
    await store.open()
    ingest = store.db._ingest

    async def timed_out() -> None:
        raise PoolTimeout("no connection in 10 s")

    async def broken() -> None:
        raise RuntimeError("the pool is gone")

    try:
        ingest._open_pool = timed_out
        with pytest.raises(StoreUnavailable):
            await store.insert_events([make_event()])
        ingest._open_pool = broken
        events = [make_event() for _ in range(3)]
        inserts = asyncio.gather(*(store.insert_events([e]) for e in events))
        results = await asyncio.wait_for(inserts, timeout=30)  # nobody waits for ever
        assert [r[0].id for r in results] == [e.id for e in events]
        for event in events:
            assert await store.get_event(event.id) is not None
    finally:
        await store.close()
