"""A refunded order is refunded once. WooCommerce's order.updated and Shopify's
orders/updated are sent again on every later edit of the order (a note, a tag, a
fulfilment), each with a new modification time: the refund route must not run again,
nor add its note again, for those."""

from __future__ import annotations

import json

import pytest

from tests.recipes.conftest import RelayFactory, post_sample, send
from tests.recipes.delivery import as_sender_sends, sample_body

# WooCommerce: order.updated is bound to woocommerce_update_order, which runs on every
# save of the order (get_topic_hooks in
# https://github.com/woocommerce/woocommerce/blob/trunk/plugins/woocommerce/includes/class-wc-webhook.php).
# Shopify staff: "'orders/updated' changes whenever the order is updated at all"
# (https://community.shopify.com/c/shopify-apis-and-sdks/difference-between-the-orders-updated-and-orders-edited-webhooks/td-p/1060608).
LATER_EDITS = {
    "woocommerce": (
        "order.updated",
        {"date_modified": "2026-03-09T10:30:00", "date_modified_gmt": "2026-03-09T09:30:00",
         "customer_note": "Please send the credit note by email"},
        {},
    ),
    "shopify": (
        "orders/updated",
        {"updated_at": "2026-03-09T10:30:00-05:00", "note": "Credit note sent",
         "tags": "refund-handled"},
        {"X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-000000000099"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("sender", sorted(LATER_EDITS))
async def test_a_later_edit_of_a_refunded_order_does_not_refund_it_again(
    recipe_relay: RelayFactory, sender: str
) -> None:
    event_type, edit, headers = LATER_EDITS[sender]
    refunded = json.loads(sample_body(sender, "refund.json"))
    edited = json.dumps({**refunded, **edit}).encode()
    async with recipe_relay(sender) as relay:
        first = await post_sample(relay, sender, "refund.json", event_type)
        assert first.status == "pending", first.last_error
        assert [step.action for step in first.steps].count("note") == 1

        again = await send(
            relay, as_sender_sends(sender, "refund.json", event_type, headers, body=edited)
        )
        assert again.status_code == 200, again.text
        assert again.json() == {"event_id": first.id, "status": "duplicate"}
