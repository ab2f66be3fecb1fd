"""The PostgreSQL store's lane (``write_now``): a Keap call's rate-limit reservation and
its "sending" mark do not wait for the pool while its every connection is busy, and the
lane costs a connection only in a process that uses it (a worker's rate gate)."""

from __future__ import annotations

import asyncio
import time

import psycopg

from app.delivery.gate import ceilings_for
from app.domain.quota import utc_day_start
from app.settings import OAUTH_CEILINGS
from tests.store.test_postgres_ingest import PostgresStore, named, wait_for_lock_waits

HELD = 727_301  # an advisory lock key of this test's own


def connections(url: str, application_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_reservation_and_a_mark_do_not_wait_for_a_busy_pool(
    postgres_schema_url: str,
) -> None:
    url, name = named(postgres_schema_url)
    store = PostgresStore(url, pool_size=2)
    await store.open()
    try:
        assert connections(postgres_schema_url, name) == 2  # no lane until it is used
        with psycopg.connect(postgres_schema_url, autocommit=True) as blocker:
            blocker.execute("SELECT pg_advisory_lock(%s)", (HELD,))
            # Every connection of the pool (and every thread before them) is busy.
            busy = [
                asyncio.ensure_future(
                    store.db.write(lambda c: c.execute("SELECT pg_advisory_xact_lock(%s)", (HELD,)))
                )
                for _ in range(4)
            ]
            await wait_for_lock_waits(postgres_schema_url, name, 2)  # the pool's 2, held
            ceilings = ceilings_for(*OAUTH_CEILINGS)
            now = time.time()
            wait = await asyncio.wait_for(store.reserve_call(now, ceilings), 10)
            assert wait == 0.0
            # An event nobody claimed: the mark is refused, but it was asked and answered.
            marked = await asyncio.wait_for(store.mark_step_sending("evt_none", 0, "w1"), 10)
            assert marked is False
            assert not any(task.done() for task in busy)  # they were still waiting
            blocker.execute("SELECT pg_advisory_unlock(%s)", (HELD,))
            await asyncio.wait_for(asyncio.gather(*busy), 10)
        assert connections(postgres_schema_url, name) == 3  # the pool's 2 and the lane's 1
        assert await store.quota_use([now - 60], utc_day_start(now)) == [1, 1]
    finally:
        await store.close()
    assert connections(postgres_schema_url, name) == 0
