"""A large batch goes out as soon as the rate gate is about to run out of this process's
calls, and its call goes ahead of the queue: the gate then never idles while a wave of
events waits on one batch (OAuth scale, docs/performance.md)."""

from __future__ import annotations

import asyncio
import time

from app.delivery.batching import GATE_LOW_WATER, Batcher
from app.delivery.gate import StoreCallGate

KEY = ("tags", (101,))


async def _park(batcher: Batcher, contacts: range) -> list[asyncio.Task[object]]:
    tasks = [asyncio.create_task(batcher.submit(KEY, c)) for c in contacts]
    await asyncio.sleep(0.01)
    return tasks  # type: ignore[return-value]


def _batcher(backlog: list[int], sent: list[list[int]]) -> Batcher:
    async def send(key: object, contacts: list[int]) -> tuple[set[int], list[object]]:
        sent.append(contacts)
        return set(contacts), []

    # 1 000 events in flight: none of the other rules (all parked, full, window) fires.
    return Batcher(send, 30.0, lambda: 1000, lambda: backlog[0])  # type: ignore[arg-type]


async def test_a_large_group_goes_out_when_the_gate_runs_low() -> None:
    backlog, sent = [50], []
    batcher = _batcher(backlog, sent)
    tasks = await _park(batcher, range(1, 2 * GATE_LOW_WATER))
    assert sent == []  # calls still queued at the gate: the group waits for more
    backlog[0] = GATE_LOW_WATER
    tasks += await _park(batcher, range(1000, 1001))  # the next one to park sends it
    assert sent == [[*range(1, 2 * GATE_LOW_WATER), 1000]]
    assert all(t.done() for t in tasks)


async def test_a_small_group_waits_even_when_the_gate_is_idle() -> None:
    backlog, sent = [0], []
    batcher = _batcher(backlog, sent)
    tasks = await _park(batcher, range(1, GATE_LOW_WATER + 1))
    assert sent == []  # a few events: worth waiting for the others to join
    await batcher.close()
    for task in tasks:
        task.cancel()


class QueueStore:
    """Grants every reservation after a short delay (20 ms)."""

    async def reserve_call(self, slot: float, ceilings: list[tuple[int, float]]) -> float:
        await asyncio.sleep(0.02)
        return 0.0


async def test_an_urgent_call_goes_ahead_of_the_queued_ones_and_the_backlog_counts_each() -> None:
    gate = StoreCallGate(QueueStore(), [(1000, 1.0)])  # type: ignore[arg-type]
    order: list[str] = []

    async def call(name: str, urgent: bool = False) -> None:
        await gate.acquire(urgent=urgent)
        order.append(name)

    queued = [asyncio.create_task(call(f"q{i}")) for i in range(6)]
    await asyncio.sleep(0.005)
    assert gate.waiting == 6
    started = time.monotonic()
    await call("batch", urgent=True)
    assert time.monotonic() - started < 0.1  # not behind six reservations of 20 ms
    assert order.index("batch") <= 2
    await asyncio.gather(*queued)
    assert gate.waiting == 0
