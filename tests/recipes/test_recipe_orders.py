"""Each cart recipe's optional order block, uncommented as a user would, plans the sample
checkout as the Keap order it should be: products mapped, amounts in the currency (not
cents), the payment equal to what the customer paid, the cart's order id kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.config.loader import parse_config
from tests.conftest import api_relay
from tests.recipes.conftest import send, stored_event
from tests.recipes.delivery import TEST_ENV, as_sender_sends

SENDERS = Path(__file__).parents[2] / "app/recipes/senders"
FALLBACK = 999999
BLOCK_START = "      # - order:"


def with_order_block(sender: str) -> str:
    """The recipe with its order block uncommented, exactly as a user edits it."""
    out, inside = [], False
    for line in (SENDERS / f"{sender}.yaml").read_text().split("\n"):
        if line == BLOCK_START:
            inside = True
        elif inside and not line.startswith("      #"):
            inside = False
        if inside:
            line = "      " + line[8:] if line.startswith("      # ") else ""
        out.append(line)
    return "\n".join(out)


@dataclass(frozen=True)
class Checkout:
    sender: str
    sample: str
    event_type: str
    items: list[tuple[int, int, float | None]]  # product id, quantity, price per unit
    extras: list[tuple[str, float]]
    paid: float
    sender_order_id: str
    headers: dict[str, str] = field(default_factory=dict)


CHECKOUTS = [
    Checkout(
        "thrivecart",
        "purchase_bump_upsell.form",
        "order.success",
        [(555555, 1, 197.0), (666666, 1, 47.0), (777777, 1, 97.0)],  # product, bump, upsell
        [],
        341.0,
        "4480",
    ),
    Checkout(
        "shopify",
        "purchase_several_items.json",
        "orders/paid",
        [(555555, 1, 58.0), (FALLBACK, 2, 6.5), (FALLBACK, 1, 14.0)],
        [("DISCOUNT", -9.0), ("SHIPPING", 7.5), ("TAX", 8.35)],
        91.85,
        "5880123456790",
        {"X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-000000000099"},
    ),
    Checkout("samcart", "purchase.json", "Order", [(555555, 1, 97.0)], [], 97.0, "6310042"),
    Checkout(
        "woocommerce",
        "purchase.json",
        "order.created",
        [(555555, 1, 72.95)],
        [("TAX", 16.05)],
        89.0,
        "727",
    ),
    Checkout(
        "stripe",
        "purchase.json",
        "checkout.session.completed",
        [(FALLBACK, 1, 49.0)],  # no metadata.sku on the sample session
        [],
        49.0,
        "cs_live_a1B2c3D4",
    ),
    Checkout(
        "paddle",
        "purchase.json",
        "transaction.completed",
        [(555555, 1, None)],  # no unit price in the sample: Keap uses the product's
        [],
        30.0,
        "txn_01hv8wptq8987qeep44cyrewp9",
    ),
    Checkout(
        "lemonsqueezy", "purchase.json", "order_created", [(555555, 1, 29.0)], [], 29.0, "1057001"
    ),
    Checkout(
        "gumroad",
        "purchase.form",
        "sale",
        [(555555, 1, 19.0)],
        [],
        19.0,
        "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2==",
    ),
    Checkout("kajabi", "purchase.json", "purchase", [(555555, 1, 149.0)], [], 149.0, "99012873"),
]


@pytest.mark.parametrize("checkout", CHECKOUTS, ids=lambda c: f"{c.sender}/{c.sample}")
async def test_the_recipe_order_block_plans_the_sample_checkout(
    tmp_path: Path, checkout: Checkout
) -> None:
    config = parse_config(with_order_block(checkout.sender), TEST_ENV, name="recipe.yaml")
    async with api_relay(f"sqlite:///{tmp_path / 'relay.db'}", config) as client:
        request = as_sender_sends(
            checkout.sender, checkout.sample, checkout.event_type, checkout.headers
        )
        response = await send(client, request)
        assert response.status_code == 202, response.text
        event = await stored_event(client, response.json()["event_id"])
    assert event.status == "pending", event.last_error
    steps: dict[str, Any] = {s.action: s.params for s in event.steps}
    order, payment = steps["order"], steps["payment"]
    products = [i for i in order["items"] if i["type"] == "PRODUCT"]
    assert [(i["product_id"], i["quantity"], i.get("price")) for i in products] == checkout.items
    assert [(i["type"], i["price"]) for i in order["items"] if i["type"] != "PRODUCT"] == (
        checkout.extras
    )
    assert payment["amount"] == checkout.paid
    assert payment["payment_type"] == "Credit Card (Manual)"
    assert order["sender_order_id"] == payment["sender_order_id"] == checkout.sender_order_id
    assert order["order_id_field"] == 888888
    if all(price is not None for _, _, price in checkout.items):
        assert order["total"] == checkout.paid  # the items add up to what was paid
