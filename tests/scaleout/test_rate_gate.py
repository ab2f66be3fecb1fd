"""The rate gate sends a call only on a slot it reserved just now: a reservation that came
back late (a slow commit on a busy host) no longer says when the call goes out, so the
shared windows would undercount the moment it is really sent."""

from __future__ import annotations

import asyncio
import time

from app.delivery.gate import FRESH_SLOT_SECONDS, RESERVE_ATTEMPTS, StoreCallGate

CEILINGS = [(1, 0.01), (100, 1.0)]


class SlowStore:
    """Grants every reservation, answering after the given delays (then at once)."""

    def __init__(self, *delays: float) -> None:
        self.delays = list(delays)
        self.slots: list[float] = []

    async def reserve_call(self, now: float, ceilings: list[tuple[int, float]]) -> float:
        self.slots.append(now)
        await asyncio.sleep(self.delays.pop(0) if self.delays else 0.0)
        return 0.0


def gate_on(store: SlowStore) -> StoreCallGate:
    return StoreCallGate(store, CEILINGS)  # type: ignore[arg-type]


async def test_a_prompt_grant_is_used_as_it_is() -> None:
    store = SlowStore()
    await gate_on(store).acquire()
    assert len(store.slots) == 1


async def test_a_late_grant_is_replaced_by_a_fresh_slot() -> None:
    store = SlowStore(FRESH_SLOT_SECONDS * 3)
    await gate_on(store).acquire()
    sent_at = time.time()
    assert len(store.slots) == 2  # the late one stays counted: only ever safer
    assert sent_at - store.slots[-1] <= FRESH_SLOT_SECONDS


async def test_a_database_that_is_always_slow_still_lets_calls_through() -> None:
    store = SlowStore(*[FRESH_SLOT_SECONDS * 2] * 10)
    await asyncio.wait_for(gate_on(store).acquire(), timeout=5)
    assert len(store.slots) == RESERVE_ATTEMPTS


async def test_the_sending_mark_is_written_once_and_only_for_the_slot_used() -> None:
    store = SlowStore(FRESH_SLOT_SECONDS * 3)
    marked_after: list[int] = []

    async def mark_sending() -> None:
        marked_after.append(len(store.slots))

    await gate_on(store).acquire(before_send=mark_sending)
    assert marked_after == [2]  # not on the late first grant: on the fresh second one
