"""What alerts, the quota budget and the problems view read from the store, on both
databases."""

from __future__ import annotations

import asyncio

import pytest

from app.delivery.budget import read_budget
from app.domain.problems import DeadEvent, DeadGroup
from app.domain.quota import QUOTA_RESET_MARGIN, UTC_DAY_WINDOW, utc_day_start
from app.store.base import Store
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
    stored = '["paid-order"]'  # the routes as stored: what "replay these" filters on
    assert await store.dead_groups(10) == [
        DeadGroup("shop", "paid-order", "tags: 400 no such tag", 2, T0 + 1, T0 + 2, stored),
        DeadGroup("woo", "paid-order", "tags: 400 no such tag", 1, T0 + 4, T0 + 4, stored),
        DeadGroup("shop", "paid-order", "goal: 400", 1, T0 + 3, T0 + 3, stored),
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
    # Old group keys are forgotten; other keys stay.
    assert await store.forget_alert_state("dead:", T0 + 6) == 0
    assert await store.forget_alert_state("dead:", T0 + 7) == 1
    assert await store.load_alert_state("dead:") == {}
    assert await store.load_alert_state("auth") == {"auth-paused": (0.0, T0 + 2)}


async def test_the_daily_ceiling_waits_for_the_utc_reset_then_opens(store: Store) -> None:
    midnight = utc_day_start(T0) + UTC_DAY_WINDOW  # the next 00:00 UTC
    day = [(3, UTC_DAY_WINDOW)]
    for offset in (3600.0, 60.0, 1.0):  # three calls late in the day spend the quota
        assert await store.reserve_call(midnight - offset, day) == 0.0
    # The 4th waits until Keap resets the quota (plus a margin), not a sliding 24 h.
    assert await store.reserve_call(midnight - 0.5, day) == pytest.approx(0.5 + QUOTA_RESET_MARGIN)
    assert await store.reserve_call(midnight + QUOTA_RESET_MARGIN, day) == 0.0
    budget = await read_budget(store, (5, 240, 3), midnight + QUOTA_RESET_MARGIN)
    assert [(w.name, w.used, w.ceiling) for w in budget.windows] == [
        ("second", 1, 5),
        ("minute", 2, 240),  # yesterday's last call is still within the minute
        ("day", 1, 3),  # but not within today's quota
    ]
    assert (budget.day_started, budget.resets_at) == (midnight, midnight + UTC_DAY_WINDOW)
