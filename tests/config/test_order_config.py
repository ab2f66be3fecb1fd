"""relay.yaml's order and note actions: mistakes are named with the file, path and reason."""

from __future__ import annotations

import pytest

from app.config.describe import describe_route
from app.config.loader import parse_config
from app.errors import ConfigError

ROUTE = """
sources: {a: {verify: {scheme: shopify, secret: s}}}
routes:
  - name: r
    source: a
    event: orders/paid
    contact: {email: body.email}
    actions:
      - ACTION
"""
ORDER = (
    "order: {title: body.name, items: body.line_items, "
    "item: {sku: sku, quantity: quantity, price: price}, "
    "products: {COURSE: 5001}, order_id: body.id, order_id_field: 7"
)


def problems(action: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(ROUTE.replace("ACTION", action), {}, name="relay.yaml")
    assert all(line.startswith("relay.yaml: ") for line in caught.value.problems)
    return "\n".join(caught.value.problems)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (
            ORDER + ", payment: {type: \"'Check'\"}}",
            "routes[0].actions[0].order.payment.amount: required key is missing",
        ),
        (
            ORDER.replace("{COURSE: 5001}", "{}") + "}",
            "routes[0].actions[0].order: products is empty",
        ),
        (ORDER + ", shipping: body.x}", "routes[0].actions[0].order.shipping: unknown key"),
        (
            ORDER.replace("price: price", "prize: price") + "}",
            "routes[0].actions[0].order.item.prize: unknown key",
        ),
        (
            ORDER.replace("products: {COURSE: 5001}, ", "") + "}",
            "item.sku needs products (SKU → Keap product id) or fallback_product",
        ),
        (
            ORDER.replace(", order_id_field: 7", "") + "}",
            "order_id and order_id_field go together",
        ),
        (
            ORDER + ", extra_items: [{type: COUPON, price: body.d}]}",
            "routes[0].actions[0].order.extra_items[0].type",
        ),
        (
            "note: {title: \"'N'\", body: 'Bought {{ body.[x }}'}",
            "routes[0].actions[0].note.body: invalid JMESPath 'body.[x'",
        ),
    ],
)
def test_a_bad_order_or_note_is_named(action: str, expected: str) -> None:
    assert expected in problems(action)


def test_a_good_order_and_note_load() -> None:
    text = ROUTE.replace("ACTION", ORDER + ", payment: {amount: body.total, type: \"'Check'\"}}")
    text += "      - note: {title: \"'N'\", body: 'Bought {{ body.name }}'}\n"
    config = parse_config(text, {}, name="relay.yaml")
    order, note = (a for a in config.routes[0].actions)
    assert order.kind == "order"
    assert order.value.products == {"COURSE": 5001}
    assert note.kind == "note"


def test_relay_check_prints_the_order_plan() -> None:
    text = ROUTE.replace(
        "ACTION",
        ORDER + ", fallback_product: 99, extra_items: [{type: TAX, price: body.tax}], "
        "payment: {amount: body.total, type: \"'Check'\"}}",
    )
    [route] = parse_config(text, {}, name="relay.yaml").routes
    plan = "\n".join(describe_route(route))
    assert "one item per body.line_items (SKU ← sku via products {COURSE → 5001}" in plan
    assert "else product 99); plus TAX ← body.tax" in plan
    assert "sender order id body.id → order custom field 7 (a replay reuses that order)" in plan
    assert "then record a payment of body.total ('Check')" in plan
