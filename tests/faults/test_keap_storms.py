"""Infusionsoft outages and 429 storms during delivery: everything is delivered once the
storm passes, nothing is dead, and no action set runs twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_keap.server import FakeKeapServer
from tests.conftest import make_config
from tests.delivery.conftest import API_KEY, running_relay
from tests.faults.conftest import FAULT_YAML, assert_delivered_once, order, post_order
from tests.faults.conftest import wait_all_finished as wait_finished

EVENTS = 30


@pytest.fixture
def fake() -> Iterator[FakeKeapServer]:
    with FakeKeapServer(valid_keys={API_KEY}, latency_ms=20) as server:
        yield server


async def test_an_outage_mid_delivery_delays_but_loses_nothing(
    tmp_path: Path, fake: FakeKeapServer
) -> None:
    async with running_relay(
        f"sqlite:///{tmp_path / 'relay.db'}", fake, make_config(FAULT_YAML)
    ) as relay:
        ids = [(await post_order(relay.client, order(i))).json()["event_id"] for i in range(10)]
        await asyncio.sleep(0.3)  # some delivered, some in flight
        fake.state.set_outage(503, seconds=1.5)
        ids += [
            (await post_order(relay.client, order(i))).json()["event_id"] for i in range(10, EVENTS)
        ]
        await asyncio.sleep(0.5)
        fake.state.set_outage("drop", seconds=1.0)  # then connections cut mid-request
        records = await wait_finished(relay.store, ids, within=30)
    assert fake.state.request_count() > 3 * EVENTS, "the outage never hit a call"
    assert_delivered_once(records, fake.state)
    assert all(r.last_error is None for r in records)


async def test_a_429_storm_is_ridden_out(tmp_path: Path, fake: FakeKeapServer) -> None:
    fake.state.configure(per_second=3, retry_after=True)  # far below the relay's 50/s
    fake.state.fail_next(429, count=15)
    async with running_relay(
        f"sqlite:///{tmp_path / 'relay.db'}", fake, make_config(FAULT_YAML)
    ) as relay:
        ids = [(await post_order(relay.client, order(i))).json()["event_id"] for i in range(EVENTS)]
        await asyncio.sleep(2.0)  # the storm
        fake.state.configure(per_second=None)
        records = await wait_finished(relay.store, ids, within=30)
    throttled = sum(1 for r in fake.state.requests if r.status == 429)
    assert throttled >= 15, "the storm never throttled a call"
    assert_delivered_once(records, fake.state)
    assert {r.status for r in records} == {"delivered"}
