"""The rate gate sends a call only on a slot it reserved just ahead: a reservation that came
back after its slot (a slow commit on a busy host) no longer says when the call goes out,
so the shared windows would undercount the moment it is really sent. And it sends the call
at its slot, not before."""

from __future__ import annotations

import asyncio
import time

from app.delivery.gate import FRESH_SLOT_SECONDS, LEAD_BOUNDS, RESERVE_ATTEMPTS, StoreCallGate

CEILINGS = [(1, 0.01), (100, 1.0)]
# A grant this slow comes back after its slot, however long the lead has grown.
LATE = LEAD_BOUNDS[1] + 2 * FRESH_SLOT_SECONDS


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
    store = SlowStore(LATE)
    await gate_on(store).acquire()
    sent_at = time.time()
    assert len(store.slots) == 2  # the late one stays counted: only ever safer
    assert sent_at - store.slots[-1] <= FRESH_SLOT_SECONDS


async def test_a_database_that_is_always_slow_still_lets_calls_through() -> None:
    store = SlowStore(*[LATE] * 10)
    await asyncio.wait_for(gate_on(store).acquire(), timeout=5)
    assert len(store.slots) == RESERVE_ATTEMPTS


async def test_the_sending_mark_is_written_once_and_only_for_the_slot_used() -> None:
    store = SlowStore(LATE)
    marked_after: list[int] = []

    async def mark_sending() -> None:
        marked_after.append(len(store.slots))

    await gate_on(store).acquire(before_send=mark_sending)
    assert marked_after == [2]  # not on the late first grant: on the fresh second one


async def test_a_call_goes_out_at_its_slot_reserved_ahead_not_before() -> None:
    store = SlowStore(0.01)
    gate = gate_on(store)
    asked_at = time.time()
    await gate.acquire()
    sent_at = time.time()
    slot = store.slots[0]
    assert slot >= asked_at + LEAD_BOUNDS[0]  # asked for a moment ahead of now
    assert slot <= sent_at <= slot + FRESH_SLOT_SECONDS


class CountingWindowStore(SlowStore):
    """Refuses a slot within ``spacing`` of the last one granted, saying how long to wait."""

    def __init__(self, spacing: float) -> None:
        super().__init__()
        self.spacing = spacing
        self.granted: list[float] = []

    async def reserve_call(self, now: float, ceilings: list[tuple[int, float]]) -> float:
        self.slots.append(now)
        if self.granted and now < self.granted[-1] + self.spacing:
            return self.granted[-1] + self.spacing - now
        self.granted.append(now)
        return 0.0


async def test_the_next_reservation_asks_for_the_next_slot_it_could_have() -> None:
    spacing = 0.05
    store = CountingWindowStore(spacing)
    gate = StoreCallGate(store, [(1, spacing), (100, 1.0)])  # type: ignore[arg-type]
    await asyncio.gather(*(gate.acquire() for _ in range(4)))
    assert store.slots == store.granted  # no reservation was refused: none wasted
    gaps = [b - a for a, b in zip(store.granted, store.granted[1:], strict=False)]
    assert all(gap >= spacing - 1e-6 for gap in gaps)  # float seconds since 1970


async def test_a_refused_slot_is_asked_again_when_the_wait_says() -> None:
    store = CountingWindowStore(0.3)
    store.granted.append(time.time() + 0.25)  # another replica holds the next 0.3 s
    await gate_on(store).acquire()
    refused, granted = store.slots
    assert granted == store.granted[-1]
    assert abs(granted - (store.granted[0] + 0.3)) < 1e-6  # counted from the slot asked
    assert refused < granted


async def test_the_lead_follows_the_round_trips_within_its_bounds() -> None:
    slow = gate_on(SlowStore(*[0.03] * 40))
    for _ in range(40):
        await slow.acquire()
    assert 2 * 0.03 < slow.lead <= LEAD_BOUNDS[1]
    quick = gate_on(SlowStore())
    for _ in range(5):
        await quick.acquire()
    assert quick.lead == LEAD_BOUNDS[0]
