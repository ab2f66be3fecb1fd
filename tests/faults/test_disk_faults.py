"""A full disk and a read-only database file: the relay answers 503 problem+json,
acknowledges nothing it could not store, accepts again once the fault is gone, and
delivers every event it acknowledged.

The database lives on a 4 MiB tmpfs mounted for the test (``small_disk``): tests run as
root, where chmod stops no write, so "full" is a filled tmpfs and "read-only" is an
immutable file (``chattr +i``). Both skip with the reason where the sandbox refuses.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from tests.conftest import make_config
from tests.delivery.conftest import Relay, running_relay
from tests.faults.conftest import (
    FAULT_YAML,
    assert_delivered_once,
    assert_problem,
    fill_disk,
    make_immutable,
    order,
    post_order,
)
from tests.faults.conftest import wait_all_finished as wait_finished

LEASE = {"claim_lease_seconds": 1}


@pytest.fixture
def config() -> RelayConfig:
    return make_config(FAULT_YAML)


async def _post_all(relay: Relay, numbers: range) -> tuple[list[str], list[httpx.Response]]:
    """(ids acknowledged with 202, every other answer)."""
    acknowledged, refused = [], []
    for i in numbers:
        response = await post_order(relay.client, order(i))
        if response.status_code == 202:
            acknowledged.append(response.json()["event_id"])
        else:
            refused.append(response)
    return acknowledged, refused


async def _ride_out_a_full_disk(relay: Relay, disk: Path) -> list[str]:
    """Post before, during and after a full disk; the ids acknowledged."""
    acknowledged, refused = await _post_all(relay, range(10))
    assert refused == []
    filler = fill_disk(disk)
    during, refused = await _post_all(relay, range(10, 40))
    assert refused, "the disk filled up but every webhook was still accepted"
    for response in refused:
        problem = assert_problem(response, 503)
        assert "could not be stored" in problem["detail"]
    os.remove(filler)
    after, refused = await _post_all(relay, range(40, 50))
    assert refused == [], "the relay did not accept again once space returned"
    return acknowledged + during + after


async def test_a_full_disk_is_refused_with_503_and_nothing_acknowledged_is_lost(
    small_disk: Path, fake_keap: FakeKeapServer, config: RelayConfig
) -> None:
    url = f"sqlite:///{small_disk / 'relay.db'}"
    async with running_relay(url, fake_keap, config, **LEASE) as relay:
        acknowledged = await _ride_out_a_full_disk(relay, small_disk)
    # Restarted (as an operator or a supervisor would), it delivers all it acknowledged.
    async with running_relay(url, fake_keap, config, **LEASE) as relay:
        records = await wait_finished(relay.store, acknowledged, within=20)
    assert_delivered_once(records, fake_keap.state)


async def test_delivery_resumes_by_itself_once_space_returns(
    small_disk: Path, fake_keap: FakeKeapServer, config: RelayConfig
) -> None:
    url = f"sqlite:///{small_disk / 'relay.db'}"
    async with running_relay(url, fake_keap, config, **LEASE) as relay:
        acknowledged = await _ride_out_a_full_disk(relay, small_disk)
        records = await wait_finished(relay.store, acknowledged, within=8)
        ready = (await relay.client.get("/readyz")).json()
    assert_delivered_once(records, fake_keap.state)
    assert ready["checks"]["worker"]["status"] == "ok"


async def _store_some(url: str, fake: FakeKeapServer, config: RelayConfig) -> list[str]:
    async with running_relay(url, fake, config, **LEASE) as relay:
        acknowledged, refused = await _post_all(relay, range(5))
        await wait_finished(relay.store, acknowledged, within=10)
    assert refused == []
    return acknowledged


async def test_a_read_only_database_is_refused_with_503_and_accepted_after_repair(
    small_disk: Path, fake_keap: FakeKeapServer, config: RelayConfig
) -> None:
    db = small_disk / "relay.db"
    url = f"sqlite:///{db}"
    acknowledged = await _store_some(url, fake_keap, config)
    make_immutable(db, True)
    try:
        async with running_relay(url, fake_keap, config, **LEASE) as relay:
            accepted, refused = await _post_all(relay, range(5, 15))
            assert accepted == [], "acknowledged a webhook it could not store"
            for response in refused:
                assert_problem(response, 503)
    finally:
        make_immutable(db, False)
    async with running_relay(url, fake_keap, config, **LEASE) as relay:
        after, refused = await _post_all(relay, range(15, 20))
        assert refused == []
        records = await wait_finished(relay.store, acknowledged + after, within=15)
    assert_delivered_once(records, fake_keap.state)


async def test_a_repaired_database_is_written_again_without_a_restart(
    small_disk: Path, fake_keap: FakeKeapServer, config: RelayConfig
) -> None:
    db = small_disk / "relay.db"
    url = f"sqlite:///{db}"
    await _store_some(url, fake_keap, config)
    make_immutable(db, True)
    try:
        async with running_relay(url, fake_keap, config, **LEASE) as relay:
            _, refused = await _post_all(relay, range(5, 8))
            assert refused
            make_immutable(db, False)
            await asyncio.sleep(0.5)
            accepted, refused = await _post_all(relay, range(8, 12))
    finally:
        make_immutable(db, False)
    assert refused == [], f"still refused after the repair: {refused[0].text}"
    assert len(accepted) == 4
