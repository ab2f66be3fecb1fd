"""What alerts and the problems view read from the store, on both databases."""

from __future__ import annotations

import asyncio

from app.store.base import DeadEvent, DeadGroup, Store
from tests.store.test_store_contract import T0, claimed_ids, insert, make_event


async def kill(store: Store, source: str, reason: str, at: float) -> None:
    [event_id] = await insert(store, make_event(source=source, at=at))
    await claimed_ids(store, "w1", at)
    assert await store.fail_step(event_id, 0, "w1", reason, dead=True, next_attempt_at=None, now=at)


async def test_dead_events_are_read_by_time_and_grouped_by_source_route_and_reason(
    store: Store,
) -> None:
    await kill(store, "shop", "tags: 400 no such tag", T0 + 1)
    await kill(store, "shop", "tags: 400 no such tag", T0 + 2)
    await kill(store, "shop", "goal: 400", T0 + 3)
    await kill(store, "woo", "tags: 400 no such tag", T0 + 4)
    await insert(store, make_event(at=T0 + 5))  # not dead: never counted

    assert await store.dead_since(T0 + 2, T0 + 3, 100) == [
        DeadEvent("shop", "paid-order", "tags: 400 no such tag", T0 + 2),
        DeadEvent("shop", "paid-order", "goal: 400", T0 + 3),
    ]
    assert await store.dead_groups(10) == [
        DeadGroup("shop", "paid-order", "tags: 400 no such tag", 2, T0 + 1, T0 + 2),
        DeadGroup("woo", "paid-order", "tags: 400 no such tag", 1, T0 + 4, T0 + 4),
        DeadGroup("shop", "paid-order", "goal: 400", 1, T0 + 3, T0 + 3),
    ]
    assert len(await store.dead_groups(1)) == 1


async def test_alert_state_moves_once_for_every_replica(store: Store) -> None:
    # A missing key counts as 0: the first to move it from 0 wins, the others lose.
    results = await asyncio.gather(
        *(store.advance_alert_state("auth-paused", 1.0, T0, expected=0.0) for _ in range(5))
    )
    assert sorted(results) == [False, False, False, False, True]
    assert not await store.advance_alert_state("auth-paused", 0.0, T0 + 1, expected=0.0)
    assert await store.advance_alert_state("auth-paused", 0.0, T0 + 2, expected=1.0)
    # Without ``expected`` the value only moves forward.
    assert await store.advance_alert_state("dead:k", T0 + 5, T0 + 6)
    assert not await store.advance_alert_state("dead:k", T0 + 4, T0 + 7)
    assert await store.load_alert_state("dead:") == {"dead:k": (T0 + 5, T0 + 6)}
    assert await store.load_alert_state("auth") == {"auth-paused": (0.0, T0 + 2)}
