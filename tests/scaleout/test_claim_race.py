"""Claims on PostgreSQL under READ COMMITTED: a worker whose claim is taken over while its
own transaction is under way must not write to the event (else both run its steps)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest

from app.domain.events import NewEvent, PlannedStep
from app.store.base import Store
from app.store.factory import open_store
from app.store.ids import new_event_id

OLD_WORKER, NEW_WORKER = "relay-a:1:old", "relay-b:2:new"


@pytest.fixture
async def pg_store(postgres_schema_url: str) -> AsyncIterator[Store]:
    store = open_store(postgres_schema_url, pool_size=2)
    await store.open()
    yield store
    await store.close()


async def claimed_event(store: Store) -> str:
    now = time.time()
    event = NewEvent(
        id=new_event_id(now),
        source="cart",
        event_type="order.paid",
        external_id="order-1",
        dedupe_key="order-1",
        status="pending",
        received_at=now,
        payload={},
        headers={},
        routes=["order"],
        contact_email="a@example.com",
        last_error=None,
        steps=[PlannedStep("order", "action_set", {"id": 42})],
    )
    [inserted] = await store.insert_events([event])
    assert inserted.created
    [claimed] = await store.claim_due_events(OLD_WORKER, now, 30, 10)
    return claimed.id


async def take_over_while_running(
    url: str, event_id: str, write: Callable[[], Awaitable[bool]]
) -> bool:
    """Run ``write`` while another worker's claim of the event commits under it: the row is
    locked first, so ``write`` starts, waits on the row, and resumes after the takeover."""
    with psycopg.connect(url) as takeover:
        takeover.execute("SELECT 1 FROM events WHERE id = %s FOR UPDATE", (event_id,))
        running = asyncio.ensure_future(write())
        await asyncio.sleep(0.3)  # its transaction has begun and waits for the row
        takeover.execute(
            "UPDATE events SET claimed_by = %s, claim_expires_at = %s WHERE id = %s",
            (NEW_WORKER, time.time() + 30, event_id),
        )
        takeover.commit()
    return await running


async def test_a_step_cannot_be_marked_sending_after_the_claim_moved(
    pg_store: Store, postgres_schema_url: str
) -> None:
    event_id = await claimed_event(pg_store)
    marked = await take_over_while_running(
        postgres_schema_url,
        event_id,
        lambda: pg_store.mark_step_sending(event_id, 0, OLD_WORKER),
    )
    assert marked is False
    event = await pg_store.get_event(event_id)
    assert event is not None
    assert event.steps[0].status == "pending"


async def test_a_step_cannot_be_completed_after_the_claim_moved(
    pg_store: Store, postgres_schema_url: str
) -> None:
    event_id = await claimed_event(pg_store)
    completed = await take_over_while_running(
        postgres_schema_url,
        event_id,
        lambda: pg_store.complete_step(event_id, 0, OLD_WORKER, {"ok": True}, None),
    )
    assert completed is False
    event = await pg_store.get_event(event_id)
    assert event is not None
    assert event.steps[0].status == "pending"
