"""A checkout becomes one paid Infusionsoft order (and a note), exactly once: through the
relay over HTTP, on SQLite and PostgreSQL, against the fake Infusionsoft over HTTP."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from app.config.loader import load_config
from devkit.cart import cart_source, headers
from fake_keap.server import FakeKeapServer
from tests.conftest import make_config
from tests.delivery.conftest import Relay, running_relay
from tests.recipes.delivery import TEST_ENV, as_sender_sends

ADMIN_TOKEN = "orders-admin-token-0123456789abcdef"

ORDERS_YAML = (
    cart_source("body.webhook_id")
    + """routes:
  - name: shop-order
    source: cart
    event: orders/paid
    contact: {email: body.email, given_name: body.customer.first_name}
    actions:
      - order:
          title: "join('', ['Shop order ', to_string(body.id)])"
          date: body.created_at
          items: body.line_items
          item: {sku: sku, quantity: quantity, price: price, description: title}
          products: {COURSE: 5001, BUMP: 5002, BOOK: 5003}
          FALLBACK
          extra_items:
            - {type: DISCOUNT, price: body.total_discounts, description: "'Discount'"}
            - {type: SHIPPING, price: "body.shipping_lines[0].price", description: "'Shipping'"}
            - {type: TAX, price: body.total_tax, description: "'Tax'"}
          order_id: body.id
          order_id_field: 7
          payment:
            {amount: body.total_price, type: "'Credit Card (Manual)'", date: body.processed_at}
      - note:
          title: "'Shop order'"
          body: "Bought {{ body.line_items[0].title }} for {{ body.total_price }}{{ body.nope }}"
"""
)

SHOPIFY_ORDER: dict[str, Any] = {
    "event": "orders/paid",
    "webhook_id": "wh-1",
    "id": 820982911946154508,
    "email": "ada@example.com",
    "customer": {"first_name": "Ada"},
    "created_at": "2026-11-27T10:30:00-05:00",
    "processed_at": "2026-11-27T10:31:00-05:00",
    "line_items": [
        {"sku": "COURSE", "title": "The Course", "quantity": 1, "price": "100.00"},
        {"sku": "BUMP", "title": "Workbook bump", "quantity": 2, "price": "20.00"},
        {"sku": "BOOK", "title": "Paperback", "quantity": 1, "price": "15.00"},
    ],
    "total_discounts": "10.00",
    "shipping_lines": [{"title": "Standard", "price": "5.00"}],
    "total_tax": "4.50",
    "total_price": "154.50",
}


def orders_config(fallback: int | None = None) -> Any:
    line = f"fallback_product: {fallback}" if fallback else ""
    return make_config(ORDERS_YAML.replace("FALLBACK", line))


@pytest.fixture
def fake_keap() -> Any:
    # Strict about what exists, as a real app is: these products and this order field.
    with FakeKeapServer(
        valid_keys={"test-key"},
        products={5001: 100.0, 5002: 20.0, 5003: 15.0, 5099: 0.0},
        known_order_custom_field_ids=frozenset({7}),
    ) as server:
        yield server


async def post(relay: Relay, body: dict[str, Any]) -> str:
    response = await relay.client.post("/hooks/cart", json=body, headers=headers())
    assert response.status_code == 202, response.text
    event_id: str = response.json()["event_id"]
    return event_id


async def replay(relay: Relay, event_id: str, from_start: bool) -> None:
    response = await relay.client.post(
        f"/admin/events/{event_id}/replay",
        params={"from_start": "true"} if from_start else {},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 202, response.text


def step(event: Any, action: str) -> Any:
    return next(s for s in event.steps if s.action == action)


async def test_a_shopify_order_lands_as_one_paid_keap_order_with_a_note(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    async with running_relay(
        database_url, fake_keap, orders_config(), admin_token=ADMIN_TOKEN
    ) as relay:
        event = await relay.wait_for(await post(relay, SHOPIFY_ORDER), "delivered")
        bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        shown = await relay.client.get(f"/admin/events/{event.id}", headers=bearer)
        page = await relay.client.get(f"/admin/events/{event.id}/view", headers=bearer)
    state = fake_keap.state
    contact = state.contact_by_email("ada@example.com")
    assert contact is not None
    [order] = state.orders
    assert order.contact_id == contact.id
    assert order.title == "Shop order 820982911946154508"
    assert order.order_time == "2026-11-27T15:30:00Z"
    lines = [(i.item_type, i.product_id, i.quantity, i.price_cents) for i in order.items]
    assert lines == [
        ("PRODUCT", 5001, 1, 10000),
        ("PRODUCT", 5002, 2, 2000),
        ("PRODUCT", 5003, 1, 1500),
        ("DISCOUNT", None, 1, -1000),
        ("SHIPPING", None, 1, 500),
        ("TAX", None, 1, 450),
    ]
    assert order.total_cents == 15450  # the webhook's total_price
    assert order.custom_fields == {7: "820982911946154508"}
    [payment] = state.payments
    assert (payment.order_id, payment.amount_cents) == (order.id, 15450)
    assert payment.payment_type == "Credit Card (Manual)"
    assert payment.payment_time == "2026-11-27T15:31:00Z"
    # The history shows Keap's order id beside the sender's.
    order_step = step(event, "order")
    assert order_step.result["keap_order_id"] == order.id
    assert order_step.result["sender_order_id"] == "820982911946154508"
    records = {s["action"]: s["records"] for s in shown.json()["steps"]}
    assert records["order"] == {"sender_order_id": "820982911946154508", "keap_order_id": order.id}
    assert records["payment"]["keap_payment_id"] == payment.id
    assert page.status_code == 200
    assert 'data-testid="step-records"' in page.text
    assert f'"keap_order_id":{order.id}' in page.text.replace("&#34;", '"').replace(" ", "")
    [note] = state.notes
    assert note.contact_id == contact.id
    assert (note.title, note.text) == ("Shop order", "Bought The Course for 154.50")
    assert note.user_id == 1  # the credential's user, discovered as for emails


@pytest.mark.parametrize("from_start", [False, True])
async def test_a_replay_leaves_one_order_and_one_payment(
    database_url: str, fake_keap: FakeKeapServer, from_start: bool
) -> None:
    async with running_relay(
        database_url, fake_keap, orders_config(), admin_token=ADMIN_TOKEN
    ) as relay:
        event_id = await post(relay, SHOPIFY_ORDER)
        await relay.wait_for(event_id, "delivered")
        await replay(relay, event_id, from_start)
        await relay.wait_for(event_id, "delivered")
        event = await relay.event(event_id)
    state = fake_keap.state
    assert len(state.orders) == 1
    assert len(state.payments) == 1
    if from_start:  # every step ran again: the order was found by its sender id, and paid
        assert step(event, "order").result["reused"] is True
        assert step(event, "payment").result["already_paid"] is True
        assert state.request_count("order.create") == 1


async def test_a_lost_answer_on_create_order_leaves_one_order_and_the_step_marked(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    # Keap creates the order, then the connection drops before its answer arrives.
    fake_keap.state.fail_next("drop", operation="order.create", after_handling=True)
    async with running_relay(
        database_url, fake_keap, orders_config(), admin_token=ADMIN_TOKEN
    ) as relay:
        event_id = await post(relay, SHOPIFY_ORDER)
        event = await relay.wait_for(event_id, "delivered")
        order_step = step(event, "order")
        assert "may have run it" in order_step.result["outcome_unknown"]
        assert fake_keap.state.request_count("order.create") == 1  # not repeated
        # The payment found the order by the sender's order id.
        [order] = fake_keap.state.orders
        assert [p.order_id for p in fake_keap.state.payments] == [order.id]
        await replay(relay, event_id, from_start=True)
        await relay.wait_for(event_id, "delivered")
    assert len(fake_keap.state.orders) == 1
    assert len(fake_keap.state.payments) == 1


async def test_an_unmapped_sku_goes_to_the_fallback_product(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    body = copy.deepcopy(SHOPIFY_ORDER)
    body["line_items"][2]["sku"] = "POSTER-XL"
    async with running_relay(database_url, fake_keap, orders_config(fallback=5099)) as relay:
        await relay.wait_for(await post(relay, body), "delivered")
    [order] = fake_keap.state.orders
    assert [i.product_id for i in order.items if i.item_type == "PRODUCT"] == [5001, 5002, 5099]
    assert order.items[2].description == "Paperback"
    assert order.total_cents == 15450


async def test_an_unmapped_sku_without_fallback_makes_the_event_dead_naming_it(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    body = copy.deepcopy(SHOPIFY_ORDER)
    body["line_items"][1]["sku"] = "POSTER-XL"
    async with running_relay(database_url, fake_keap, orders_config()) as relay:
        event = await relay.wait_for(await post(relay, body), "dead")
    assert event.last_error is not None
    assert "'POSTER-XL'" in event.last_error
    assert "order.items[1]" in event.last_error
    assert fake_keap.state.orders == []
    assert fake_keap.state.contacts == []  # nothing of a half-planned event was sent


async def test_keap_refusing_a_payment_type_makes_the_event_dead_with_one_unpaid_order(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    fake_keap.state.configure(manual_payment_types=frozenset({"Check"}))
    async with running_relay(database_url, fake_keap, orders_config()) as relay:
        event = await relay.wait_for(await post(relay, SHOPIFY_ORDER), "dead")
    assert "Invalid payment method type" in (event.last_error or "")
    assert len(fake_keap.state.orders) == 1
    assert fake_keap.state.payments == []


async def test_keap_refusing_an_unknown_product_makes_the_event_dead(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    fake_keap.state.configure(products={5001: 100.0, 5002: 20.0})  # 5003 was deleted in Keap
    async with running_relay(database_url, fake_keap, orders_config()) as relay:
        event = await relay.wait_for(await post(relay, SHOPIFY_ORDER), "dead")
    assert "Invalid product id: 5003" in (event.last_error or "")
    assert fake_keap.state.orders == []


async def test_a_dry_run_plans_the_order_and_payment_and_sends_nothing(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    async with running_relay(database_url, fake_keap, orders_config(), dry_run=True) as relay:
        event = await relay.wait_for(await post(relay, SHOPIFY_ORDER), "delivered")
    assert [s.action for s in event.steps] == ["contact.upsert", "order", "payment", "note"]
    assert all(s.result.get("dry_run") for s in event.steps)
    assert fake_keap.state.request_count() == 0


async def test_the_thrivecart_refund_recipe_swaps_its_tags_and_notes_the_refund(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    recipe = Path(__file__).parents[2] / "app/recipes/senders/thrivecart.yaml"
    config = load_config(recipe, TEST_ENV)
    async with running_relay(database_url, fake_keap, config) as relay:
        for sample, event_type in (
            ("purchase.form", "order.success"),
            ("refund.form", "order.refund"),
        ):
            request = as_sender_sends("thrivecart", sample, event_type)
            response = await relay.client.request(
                request.method, request.url, content=request.content, headers=request.headers
            )
            assert response.status_code == 202, response.text
            await relay.wait_for(response.json()["event_id"], "delivered")
    contact = fake_keap.state.contact_by_email("maria.lopez@example.com")
    assert contact is not None
    assert fake_keap.state.tags_of(contact.id) == {222222}  # customer tag off, refunded on
    [note] = fake_keap.state.notes
    assert (note.contact_id, note.title) == (contact.id, "ThriveCart refund")
    assert note.text == "Refunded 197.00 USD for Growth Course (ThriveCart order 4471)"
