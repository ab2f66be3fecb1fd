"""Batching across events: in-flight events' identical tag / sequence steps go out as one
REST v2 many-contacts call, each event's step recorded from its own contact's result.
Over HTTP, against the fake, on both databases."""

from __future__ import annotations

import httpx
import pytest

from app.config.models import RelayConfig
from devkit.cart import cart_source
from fake_keap.server import FakeKeapServer
from tests.admin.conftest import ADMIN_TOKEN, BEARER
from tests.conftest import make_config
from tests.delivery.conftest import running_relay

BATCH_YAML = (
    cart_source()
    + """routes:
  - name: purchase
    source: cart
    event: buy
    contact: {email: body.email, given_name: body.first_name}
    actions:
      - tags: [500]
      - sequence: {campaign: 7, sequence: 3}
  - name: refund
    source: cart
    event: refund
    contact: {email: body.email}
    actions:
      - remove_tags: [500]
"""
)


@pytest.fixture
def batch_config() -> RelayConfig:
    return make_config(BATCH_YAML)


def buy(name: str) -> dict[str, str]:
    return {"event": "buy", "id": f"buy-{name}", "email": f"{name}@example.com", "first_name": name}


async def test_one_contact_failing_in_a_batch_fails_only_that_events_step(
    database_url: str, fake_keap: FakeKeapServer, batch_config: RelayConfig
) -> None:
    state = fake_keap.state
    # X's upsert is done and its tag step failed; then X is deleted in Keap, so its
    # stored contact id names no contact when it is replayed (reuse off: no recovery).
    state.configure(known_tag_ids=frozenset({1}))
    async with running_relay(
        database_url, fake_keap, batch_config, contact_reuse_minutes=0
    ) as relay:
        x = await relay.wait_for(await relay.post(buy("x")), "dead")
    stale = x.contact_id
    async with httpx.AsyncClient() as control:
        deleted = await control.post(
            fake_keap.control_url + "/config", json={"delete_contacts": [stale]}
        )
        assert deleted.status_code == 200, deleted.text
    # Calls slow enough that A and B are still upserting when X is replayed, and a window
    # long enough for a loaded machine: X waits for them, and the three are one batch.
    state.configure(known_tag_ids=None, latency_ms=1000)

    async with running_relay(
        database_url,
        fake_keap,
        batch_config,
        contact_reuse_minutes=0,
        admin_token=ADMIN_TOKEN,
        batch_window_seconds=5,
    ) as relay:
        a, b = await relay.post(buy("a")), await relay.post(buy("b"))
        replay = await relay.client.post("/admin/replay", json={"status": "dead"}, headers=BEARER)
        assert replay.json() == {"requeued": 1}
        a_event = await relay.wait_for(a, "delivered")
        b_event = await relay.wait_for(b, "delivered")
        x_event = await relay.wait_for(x.id, "dead")

    # One applyTags call for the three contacts; X's contact had none, so X's step ran
    # on its own (v1), and that call's 404 failed X alone.
    assert state.request_count("tags.apply_many") == 1
    assert state.request_count("tags.add") == 1 + 1  # X's first failure, then its own try
    assert x_event.steps[1].status == "failed"
    assert x_event.last_error.startswith("tags")
    assert [(c.operation, c.status_code) for c in x_event.history[-2:]] == [
        ("tags.apply_many", 200),
        ("tags.add", 404),
    ]
    for event in (a_event, b_event):
        contact = state.contact(event.contact_id)
        assert contact is not None
        assert state.tags_of(contact.id) == {500}
        assert state.sequences_of(contact.id) == {(7, 3)}
        assert event.steps[1].result == {"contact_id": contact.id, "batched": True}
    # A and B's sequence step: one call for both.
    assert state.request_count("sequence.add_many") == 1
    assert state.request_count("sequence.add") == 0


async def test_a_purchase_then_a_refund_end_with_the_tag_removed_after_a_batched_add(
    database_url: str, fake_keap: FakeKeapServer, batch_config: RelayConfig
) -> None:
    state = fake_keap.state
    state.configure(latency_ms=1000)  # Q is claimed while P still upserts, even under load
    refund = {"event": "refund", "id": "refund-p", "email": "p@example.com"}
    async with running_relay(
        database_url, fake_keap, batch_config, batch_window_seconds=5
    ) as relay:
        p_buy, q_buy = await relay.post(buy("p")), await relay.post(buy("q"))
        p_refund = await relay.post(refund)
        bought = await relay.wait_for(p_buy, "delivered")
        await relay.wait_for(q_buy, "delivered")
        refunded = await relay.wait_for(p_refund, "delivered")
    p, q = state.contact_by_email("p@example.com"), state.contact_by_email("q@example.com")
    assert p is not None
    assert q is not None
    assert bought.steps[1].result == {"contact_id": p.id, "batched": True}
    assert state.request_count("tags.apply_many") == 1  # P's and Q's tag, one call
    assert state.tags_of(p.id) == set()  # the refund ran after the batched add
    assert state.tags_of(q.id) == {500}
    # The refund was alone in flight: its step went out at once, as the per-contact call.
    assert state.request_count("tags.remove") == 1
    assert state.request_count("tags.remove_many") == 0
    assert refunded.steps[1].result == {"contact_id": p.id}


async def test_a_lone_event_is_not_held_back(
    database_url: str, fake_keap: FakeKeapServer, batch_config: RelayConfig
) -> None:
    async with running_relay(
        database_url, fake_keap, batch_config, batch_window_seconds=5
    ) as relay:
        event = await relay.wait_for(await relay.post(buy("solo")), "delivered", within=2.5)
    assert "batched" not in event.steps[1].result
    assert fake_keap.state.request_count("tags.add") == 1
    assert fake_keap.state.request_count("tags.apply_many") == 0
