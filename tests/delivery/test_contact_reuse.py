"""Contact reuse (RELAY_CONTACT_REUSE_MINUTES): several events of one unchanged contact
make one upsert; a contact deleted in Keap meanwhile is upserted again. Over HTTP, against
the fake, on both databases."""

from __future__ import annotations

import asyncio

import httpx

from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import running_relay

# ThriveCart's shape: one webhook for the order and one per item, same customer.
ORDER = {"event": "tag", "id": "order-1", "email": "ada@example.com", "first_name": "Ada"}
ITEM = {**ORDER, "id": "order-1/item-1"}


async def test_two_events_of_one_contact_make_one_upsert(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        first = await relay.wait_for(await relay.post(ORDER), "delivered")
        second = await relay.wait_for(await relay.post(ITEM), "delivered")
    state = fake_keap.state
    assert state.request_count("contact.upsert") == 1
    contact = state.contact_by_email("ada@example.com")
    assert contact is not None
    assert first.steps[0].result == {"contact_id": contact.id}
    assert second.steps[0].result == {"contact_id": contact.id, "reused": True}
    assert state.request_count("tags.add") == 2  # every event's own steps still run
    assert state.tags_of(contact.id) == {500}


async def test_changed_fields_or_reuse_off_upsert_again(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        await relay.wait_for(await relay.post(ORDER), "delivered")
        await relay.wait_for(await relay.post({**ITEM, "first_name": "Augusta"}), "delivered")
    contact = fake_keap.state.contact_by_email("ada@example.com")
    assert contact is not None
    assert contact.given_name == "Augusta"
    assert fake_keap.state.request_count("contact.upsert") == 2

    fake_keap.state.reset(keep_config=True)
    async with running_relay(
        database_url, fake_keap, delivery_config, contact_reuse_minutes=0
    ) as relay:
        await relay.wait_for(await relay.post({**ORDER, "id": "o-2"}), "delivered")
        await relay.wait_for(await relay.post({**ITEM, "id": "o-2/i"}), "delivered")
    assert fake_keap.state.request_count("contact.upsert") == 2


async def test_an_entry_older_than_the_window_is_not_reused(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    async with running_relay(
        database_url, fake_keap, delivery_config, contact_reuse_minutes=0.01
    ) as relay:
        await relay.wait_for(await relay.post(ORDER), "delivered")
        await asyncio.sleep(0.8)  # the window is 0.6 s
        second = await relay.wait_for(await relay.post(ITEM), "delivered")
    assert fake_keap.state.request_count("contact.upsert") == 2
    assert "reused" not in second.steps[0].result


async def test_a_contact_deleted_in_keap_after_reuse_is_upserted_again_and_delivered(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        await relay.wait_for(await relay.post(ORDER), "delivered")
        old = fake_keap.state.contact_by_email("ada@example.com")
        assert old is not None
        async with httpx.AsyncClient() as control:  # as a user deleting it in Keap
            deleted = await control.post(
                fake_keap.control_url + "/config", json={"delete_contacts": [old.id]}
            )
        assert deleted.status_code == 200, deleted.text
        second = await relay.wait_for(await relay.post(ITEM), "delivered")
        # The entry now names the new contact: a third event reuses it.
        third = await relay.wait_for(await relay.post({**ITEM, "id": "o-1/i-2"}), "delivered")
    state = fake_keap.state
    new = state.contact_by_email("ada@example.com")
    assert new is not None
    assert new.id != old.id
    assert state.tags_of(new.id) == {500}
    assert second.steps[0].result == {"contact_id": new.id}
    assert second.contact_id == new.id  # the event names the contact that exists
    assert second.steps[1].result == {"contact_id": new.id}
    assert [(a.operation, a.status_code) for a in second.history] == [
        ("tags.add", 404),
        ("contact.upsert", 201),  # a new contact
        ("tags.add", 200),
    ]
    assert third.steps[0].result == {"contact_id": new.id, "reused": True}
    assert state.request_count("contact.upsert") == 2


async def test_a_404_for_a_wrong_sequence_is_not_taken_for_a_deleted_contact(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    """The re-upsert finds the same contact, so the step fails as it would without reuse."""
    cancel = {"event": "member.cancelled", "id": "c-1", "email": "ada@example.com"}
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        await relay.wait_for(await relay.post(cancel), "delivered")
        # Campaign 7's sequence 3 is gone: removing a contact from it answers 404.
        fake_keap.state.configure(known_sequences=frozenset({(7, 4)}))
        event = await relay.wait_for(await relay.post({**cancel, "id": "c-2"}), "dead")
    assert event.last_error.startswith("remove_sequence")
    assert "Error loading follow-up sequence" in event.last_error
    assert len(fake_keap.state.contacts) == 1
    assert fake_keap.state.request_count("contact.upsert") == 2  # the check, then no more
