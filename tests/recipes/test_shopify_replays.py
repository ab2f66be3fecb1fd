"""Shopify signs only the body: a captured delivery posted again with a new webhook id
is a duplicate, and posted under another topic it runs nothing (docs/senders.md)."""

from __future__ import annotations

from tests.recipes.conftest import RelayFactory, send, stored_event
from tests.recipes.delivery import as_sender_sends


async def test_a_captured_body_replayed_with_a_new_webhook_id_is_a_duplicate(
    recipe_relay: RelayFactory,
) -> None:
    async with recipe_relay("shopify") as client:
        first = await send(
            client,
            as_sender_sends(
                "shopify", "purchase.json", "orders/paid", {"X-Shopify-Webhook-Id": "wh-1"}
            ),
        )
        replay = await send(
            client,
            as_sender_sends(
                "shopify", "purchase.json", "orders/paid", {"X-Shopify-Webhook-Id": "wh-forged-2"}
            ),
        )
    assert first.status_code == 202
    assert replay.status_code == 200
    assert replay.json() == {"event_id": first.json()["event_id"], "status": "duplicate"}


async def test_a_paid_order_replayed_as_a_cancellation_or_a_signup_runs_nothing(
    recipe_relay: RelayFactory,
) -> None:
    async with recipe_relay("shopify") as client:
        for topic in ("orders/cancelled", "customers/create", "orders/updated"):
            answer = await send(client, as_sender_sends("shopify", "purchase.json", topic))
            assert answer.status_code == 202, answer.text
            event = await stored_event(client, answer.json()["event_id"])
            assert (topic, event.status, event.steps) == (topic, "ignored", [])
