"""Per contact, events are delivered in the order their 202s left, across replicas on
one PostgreSQL (issue 13, point 5): ``seq``, the delivery order, follows commit order.

A commit is slowed on purpose by a deferred trigger added to the test's own schema (it
runs at COMMIT, after the rows took their ``seq``): the window in which a later insert
used to commit first, and be answered and delivered first, is made wide.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from app.config.models import RelayConfig
from app.main import create_app
from app.store.base import Store
from app.store.factory import open_store
from tests.conftest import make_settings
from tests.store.test_store_contract import make_event
from tests.test_ingest_http import ORDER, shopify_headers

SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.payload LIKE '%%slow-commit%%' THEN
        PERFORM pg_sleep(%(seconds)s);
    ELSIF %(jitter)s > 0 AND NEW.contact_key NOT LIKE '%%@filler.example' THEN
        PERFORM pg_sleep(random() * %(jitter)s);
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
"""


def slow_commits(url: str, *, seconds: float = 0.0, jitter: float = 0.0) -> None:
    """Make commits of this schema's events slow: ``seconds`` for a payload holding
    ``slow-commit``, up to ``jitter`` seconds at random for any other."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SLOW_COMMIT % {"seconds": float(seconds), "jitter": float(jitter)})


@pytest.fixture
async def two_replicas(
    postgres_schema_url: str, relay_config: RelayConfig
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two relay apps (API only) on one PostgreSQL schema, as two replicas."""
    clients: list[httpx.AsyncClient] = []
    apps = [
        create_app(make_settings(postgres_schema_url), config=relay_config, run_worker=False)
        for _ in range(2)
    ]
    async with (
        apps[0].fastapi.router.lifespan_context(apps[0].fastapi),
        apps[1].fastapi.router.lifespan_context(apps[1].fastapi),
    ):
        for app in apps:
            transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 50000))
            client = httpx.AsyncClient(transport=transport, base_url="http://relay")
            client.app = app  # type: ignore[attr-defined]
            clients.append(client)
        try:
            yield clients[0], clients[1]
        finally:
            for client in clients:
                await client.aclose()


async def post_order(relay: httpx.AsyncClient, webhook_id: str, note: str) -> httpx.Response:
    body = json.dumps({**ORDER, "note": note}).encode()
    headers = shopify_headers(body, webhook_id=webhook_id)
    return await relay.post("/hooks/shop", content=body, headers=headers)


async def test_two_replicas_deliver_one_contact_in_the_order_answered(
    two_replicas: tuple[httpx.AsyncClient, httpx.AsyncClient], postgres_schema_url: str
) -> None:
    """Replica B takes order 1, whose commit is slow; replica A takes order 2 of the
    same customer meanwhile. Whichever is answered 202 first is delivered first."""
    a, b = two_replicas
    slow_commits(postgres_schema_url, seconds=1.0)
    answered: list[str] = []

    async def post(relay: httpx.AsyncClient, webhook_id: str, note: str) -> str:
        response = await post_order(relay, webhook_id, note)
        assert response.status_code == 202
        answered.append(response.json()["event_id"])
        return str(response.json()["event_id"])

    first = asyncio.create_task(post(b, "wh-order-1", "slow-commit"))
    await asyncio.sleep(0.3)  # order 1 has its row and is committing
    second = asyncio.create_task(post(a, "wh-order-2", "fast"))
    await asyncio.gather(first, second)
    store: Store = a.app.state.store  # type: ignore[attr-defined]
    events = {e.id: e for e in [await store.get_event(i) for i in answered] if e}
    assert [events[i].seq for i in answered] == sorted(e.seq for e in events.values())
    # The worker's claim: only the first answered is due; the second waits for it.
    claimed = await store.claim_due_events("worker-1", time.time() + 1, 60, 10)
    assert [e.id for e in claimed] == answered[:1]
    assert await store.finish_event(answered[0], "worker-1", time.time())
    claimed = await store.claim_due_events("worker-1", time.time() + 1, 60, 10)
    assert [e.id for e in claimed] == answered[1:]


@pytest.mark.parametrize("bursts", [False, True], ids=["small-batches", "with-bursts"])
def test_racing_replicas_never_show_a_contact_event_ahead_of_an_earlier_one(
    postgres_schema_url: str, bursts: bool
) -> None:
    """Two replicas insert events of three contacts as fast as they can, every commit
    slowed by a random few milliseconds; a third connection looks at what is committed,
    again and again. Per contact, what it sees must always be the first events in
    ``seq`` order (nothing missing before the last seen): else the worker could deliver
    a later event while an earlier one of that contact was still committing. With
    bursts, one replica's requests carry more contacts than an insert locks one by one
    (the fillers' commits are not slowed)."""
    contacts = [f"racer{i}@example.com" for i in range(3)]
    rounds = 40
    asyncio.run(_open_and_close(postgres_schema_url))  # migrate before the trigger
    slow_commits(postgres_schema_url, jitter=0.01)
    seen: list[dict[str, list[int]]] = []
    done = threading.Event()

    def observe() -> None:
        with psycopg.connect(postgres_schema_url, autocommit=True) as conn:
            while not done.is_set():
                snapshot: dict[str, list[int]] = {}
                for key, seq in conn.execute("SELECT contact_key, seq FROM events"):
                    snapshot.setdefault(key, []).append(seq)
                seen.append(snapshot)

    async def replica(rng: random.Random, burst: bool) -> None:
        store = open_store(postgres_schema_url, pool_size=4)
        await store.open()
        try:
            for _ in range(rounds):
                batch = [
                    store.insert_events([make_event(email=rng.choice(contacts))])
                    for _ in range(rng.randint(1, 3))
                ]
                if burst:  # one request of 71 contacts, one of them a racer
                    events = [make_event(email=rng.choice(contacts))]
                    events += [
                        make_event(email=f"f{i}-{rng.random()}@filler.example") for i in range(70)
                    ]
                    batch.append(store.insert_events(events))
                await asyncio.gather(*batch)
        finally:
            await store.close()

    async def race() -> None:
        await asyncio.gather(replica(random.Random(1), bursts), replica(random.Random(2), False))

    observer = threading.Thread(target=observe)
    observer.start()
    try:
        asyncio.run(race())
    finally:
        done.set()
        observer.join()
    final: dict[str, list[int]] = {}
    with psycopg.connect(postgres_schema_url) as conn:
        for key, seq in conn.execute("SELECT contact_key, seq FROM events ORDER BY seq"):
            final.setdefault(key, []).append(seq)
    assert sum(len(s) for s in final.values()) >= 2 * rounds
    assert len(seen) > 50, "the observer looked too rarely to see a race"
    gaps = [
        (key, seqs, final[key])
        for snapshot in seen
        for key, seqs in snapshot.items()
        if sorted(seqs) != final[key][: len(seqs)]
    ]
    assert gaps == [], f"{len(gaps)} snapshots saw a later event before an earlier one"


async def _open_and_close(url: str) -> Any:
    store = open_store(url, pool_size=1)
    await store.open()
    await store.close()
