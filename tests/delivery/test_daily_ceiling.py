"""The daily ceiling reached: delivery waits for Keap's 00:00 UTC reset, sending nothing
more (no 429s, no failed attempts), and the budget says so."""

from __future__ import annotations

import asyncio

from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import running_relay

TAG = {"event": "tag", "first_name": "Ada"}


async def wait_for_requests(fake_keap: FakeKeapServer, count: int, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while len(fake_keap.state.requests) < count:
        assert asyncio.get_running_loop().time() < deadline, "the ceiling's calls never came"
        await asyncio.sleep(0.05)


async def test_the_daily_ceiling_holds_delivery_until_the_reset(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    async with running_relay(
        database_url, fake_keap, delivery_config, keap_rate_per_day=3
    ) as relay:
        ids = [
            await relay.post({**TAG, "id": f"t-{n}", "email": f"c{n}@example.com"})
            for n in range(4)
        ]
        # The ceiling's three calls, however slow a busy host makes them; then as long
        # again as delivering all four would take, were it not for the quota.
        await wait_for_requests(fake_keap, 3, within=30.0)
        await asyncio.sleep(3.0)
        events = [await relay.event(event_id) for event_id in ids]
        metrics = (await relay.client.get("/metrics")).text
    assert len(fake_keap.state.requests) == 3  # the ceiling, and not one call more
    assert not any(r.throttled for r in fake_keap.state.requests)
    assert [e.status for e in events].count("delivered") <= 1
    waiting = [e for e in events if e.status == "pending"]
    assert len(waiting) >= 3
    assert all(e.last_error is None for e in waiting)  # waiting, not failing
    assert 'relay_keap_calls_used{window="day"} 3.0' in metrics
    assert 'relay_keap_call_ceiling{window="day"} 3.0' in metrics
