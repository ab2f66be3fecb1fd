"""Retention: delivered and ignored events are purged after RELAY_RETENTION_DAYS, by the
worker, in small batches that leave ingest free; dead and pending events are never purged."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from app.config.models import RelayConfig
from app.delivery.retention import purge_expired
from app.domain.events import EventStatus, NewEvent, PlannedStep
from app.store.base import Store
from app.store.factory import open_store
from app.store.ids import new_event_id
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import running_relay
from tests.test_ingest_http import ORDER, shopify_headers

DAY = 86400.0
WORKER = "retention-test-worker"
_numbers = itertools.count()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = open_store(database_url, pool_size=4)
    await opened.open()
    yield opened
    await opened.close()


def new_event(received_at: float, status: EventStatus = "pending") -> NewEvent:
    n = next(_numbers)
    ignored = status == "ignored"
    return NewEvent(
        id=new_event_id(received_at),
        source="shop",
        event_type="orders/paid",
        external_id=f"order-{n}",
        dedupe_key=f"order-{n}",
        status=status,
        received_at=received_at,
        payload={"n": n},
        headers={},
        routes=[] if ignored else ["paid-order"],
        contact_email=None if ignored else f"c{n}@example.com",
        last_error="no route matched" if ignored else None,
        steps=[] if ignored else [PlannedStep("paid-order", "tags", {"ids": [1]})],
    )


async def insert(store: Store, *events: NewEvent) -> list[str]:
    inserted = await store.insert_events(list(events))
    assert all(i.created for i in inserted)
    return [i.id for i in inserted]


async def deliver(store: Store, event_id: str, *, at: float) -> None:
    """Finish the event at ``at`` (its step done), as a worker would."""
    assert event_id in {e.id for e in await store.claim_due_events(WORKER, at, 30, 100)}
    assert await store.complete_step(event_id, 0, WORKER, {"ok": True}, 7)
    assert await store.finish_event(event_id, WORKER, at)


async def kill(store: Store, event_id: str, *, at: float) -> None:
    """Make the event dead at ``at``, as a permanent failure would."""
    assert event_id in {e.id for e in await store.claim_due_events(WORKER, at, 30, 100)}
    assert await store.fail_step(
        event_id, 0, WORKER, "tags: [RecordNotFound]", dead=True, next_attempt_at=None, now=at
    )


async def test_only_delivered_and_ignored_events_past_retention_are_purged(store: Store) -> None:
    now = time.time()
    long_ago = now - 90 * DAY
    [old_delivered, recent_delivered, old_dead] = await insert(
        store, *(new_event(long_ago) for _ in range(3))
    )
    await kill(store, old_dead, at=now - 60 * DAY)
    await deliver(store, old_delivered, at=now - 31 * DAY)
    await deliver(store, recent_delivered, at=now - 29 * DAY)  # received long ago, finished late
    [old_ignored, recent_ignored, old_pending] = await insert(
        store,
        new_event(now - 31 * DAY, "ignored"),
        new_event(now - 1 * DAY, "ignored"),
        new_event(long_ago),  # never delivered: waiting is not finishing
    )

    assert await purge_expired(store, 30) == 2

    for gone in (old_delivered, old_ignored):
        assert await store.get_event(gone) is None
    for kept in (recent_delivered, recent_ignored, old_dead, old_pending):
        assert await store.get_event(kept) is not None
    dead = await store.get_event(old_dead)
    assert dead is not None
    assert dead.last_error
    assert dead.steps[0].last_error
    assert await store.count_by_status() == {"delivered": 1, "ignored": 1, "dead": 1, "pending": 1}
    # Dead and pending events are kept however old they are.
    assert await purge_expired(store, 30, now=now + 3650 * DAY) == 2
    assert await store.count_by_status() == {"dead": 1, "pending": 1}


async def test_purging_goes_in_small_batches_and_ingest_keeps_answering(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = time.time() - 60 * DAY
    await insert(store, *(new_event(old, "ignored") for _ in range(450)))
    batches: list[int] = []
    purge_batch = store.purge_finished

    async def counted(before: float, batch: int) -> int:
        deleted = await purge_batch(before, batch)
        batches.append(deleted)
        return deleted

    monkeypatch.setattr(store, "purge_finished", counted)

    purge = asyncio.create_task(purge_expired(store, 30, batch=100))
    ingest_seconds: list[float] = []
    while not purge.done():
        started = time.monotonic()
        await insert(store, new_event(time.time()))
        ingest_seconds.append(time.monotonic() - started)
        await asyncio.sleep(0.01)

    assert await purge == 450
    assert batches == [100, 100, 100, 100, 50]
    # Webhooks kept being stored while the purge ran, each well within a sender's patience.
    assert len(ingest_seconds) >= len(batches)
    assert max(ingest_seconds) < 1.0
    assert await store.count_by_status() == {"pending": len(ingest_seconds)}


async def test_a_purged_webhook_is_accepted_again(relay: httpx.AsyncClient) -> None:
    body = json.dumps({**ORDER, "financial_status": "pending"}).encode()  # matches no route
    first = await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    repeat = await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    assert (first.status_code, repeat.json()["status"]) == (202, "duplicate")

    store: Store = relay.app.state.store  # type: ignore[attr-defined]
    assert await purge_expired(store, 30, now=time.time() + 31 * DAY) == 1

    # Its dedupe key went with it: the same delivery is a new event now.
    again = await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    assert again.status_code == 202
    assert again.json()["status"] == "accepted"
    assert again.json()["event_id"] != first.json()["event_id"]
    assert await store.get_event(first.json()["event_id"]) is None


async def test_the_worker_purges_finished_events_when_it_starts(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.set_fault("ContactService.runActionSequence", 5, "[RecordNotFound]no set 42")
    retention = {"retention_days": 1 / DAY}  # one second
    async with running_relay(database_url, fake_keap, delivery_config, **retention) as relay:
        delivered = await relay.post({"event": "tag", "id": "t-1", "email": "t@example.com"})
        dead = await relay.post({"event": "order.paid", "id": "o-1", "email": "o@example.com"})
        ignored = await relay.post({"event": "no.route", "id": "n-1", "email": "n@example.com"})
        await relay.wait_for(delivered, "delivered")
        await relay.wait_for(dead, "dead")
        assert (await relay.event(ignored)).status == "ignored"
        fake_keap.state.set_outage(503)  # from now on nothing is delivered
        pending = await relay.post({"event": "tag", "id": "t-2", "email": "p@example.com"})
    await asyncio.sleep(1.1)  # the finished ones are now past retention

    async with running_relay(database_url, fake_keap, delivery_config, **retention) as relay:
        deadline = time.monotonic() + 10
        while await relay.event(delivered) is not None or await relay.event(ignored) is not None:
            assert time.monotonic() < deadline, "the worker did not purge"
            await asyncio.sleep(0.05)
        assert (await relay.event(dead)).status == "dead"
        assert (await relay.event(pending)).status == "pending"
