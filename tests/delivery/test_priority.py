"""Live events go before a bulk replay: a replay of many dead events does not hold a new
order back. Over HTTP (admin API and webhooks), against the fake, on both databases."""

from __future__ import annotations

import asyncio
import time

from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from tests.admin.conftest import ADMIN_TOKEN, BEARER
from tests.delivery.conftest import running_relay

BACKLOG = 100
RATE = 10  # calls a second: the replay alone takes ~BACKLOG / RATE = 10 s (one upsert each)
WINDOW = 1.5  # RELAY_BATCH_WINDOW_SECONDS (its default): a live tag may wait this long


def tag_event(i: int) -> dict[str, str]:
    return {"event": "tag", "id": f"t-{i}", "email": f"c{i}@example.com", "first_name": "C"}


async def test_a_bulk_replay_does_not_delay_a_live_event(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.configure(known_tag_ids=frozenset({1}))  # tag 500 unknown: dead at once
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        ids = [await relay.post(tag_event(i)) for i in range(BACKLOG)]
        for event_id in ids:
            await relay.wait_for(event_id, "dead")
    fake_keap.state.configure(known_tag_ids=None)  # the tag was made: replay them all

    async with running_relay(
        database_url,
        fake_keap,
        delivery_config,
        admin_token=ADMIN_TOKEN,
        keap_rate_per_second=RATE,
        keap_rate_per_minute=RATE * 60,
        batch_window_seconds=WINDOW,
    ) as relay:
        replay = await relay.client.post("/admin/replay", json={"status": "dead"}, headers=BEARER)
        assert replay.json() == {"requeued": BACKLOG}
        await asyncio.sleep(0.5)  # the replay is under way
        started = time.monotonic()
        live = await relay.post({**tag_event(BACKLOG), "id": "live-order"})
        # A live event of a contact whose replayed event is last in line: that one is
        # delivered first (per-contact order), with the live ones.
        behind = await relay.post({**tag_event(BACKLOG - 1), "id": "live-order-2"})
        event = await relay.wait_for(live, "delivered", within=30)
        # Counted as the live event goes out: later, the replay's progress while the
        # second live event is awaited (on a busy host) says nothing about the first.
        # Less one: the second live event may be among the pending (else this errs low).
        waiting = (await relay.store.count_by_status()).get("pending", 0) - 1
        await relay.wait_for(behind, "delivered", within=30)
        took = time.monotonic() - started
        assert (await relay.event(ids[-1])).status == "delivered"
        for event_id in ids:  # and the replay is delivered in full afterwards
            await relay.wait_for(event_id, "delivered", within=30)
    # Five calls at 10 a second, plus claim polling, plus at most the batching window for
    # a tag that joins a batch; behind the replay it would take more than 5 s.
    assert took < WINDOW + 1.5, f"the live events took {took:.1f} s"
    assert waiting >= BACKLOG // 2, f"only {waiting} replayed events were still waiting"
    assert [s.status for s in event.steps] == ["done", "done"]
