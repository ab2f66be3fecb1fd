"""Orders and notes are planned from the event: concrete items, amounts and text."""

from __future__ import annotations

from typing import Any

from app.plan.planner import plan_event
from tests.conftest import make_config

YAML = """
sources: {cart: {verify: {scheme: token, secret: s, at: query.t}, event_type: body.event}}
routes:
  - name: sale
    source: cart
    event: sale
    contact: {email: body.email}
    actions:
      - order:
          title: "'ThriveCart order'"
          date: body.date_unix
          items: "body.purchases"
          item: {product_id: keap_id, price: amount, description: name}
      - note:
          title: "'Sale'"
          body: "{{ body.name }} paid {{ body.total }} {{ body.missing.deep }}{{ body.items }}"
"""


def plan(body: dict[str, Any]) -> Any:
    document = {"headers": {}, "body": body, "query": {}}
    return plan_event(make_config(YAML), "cart", "sale", document, received_at=0.0)


def test_a_note_renders_values_as_text_and_missing_ones_as_nothing() -> None:
    result = plan(
        {
            "event": "sale",
            "email": "a@example.com",
            "name": "{{ body.email }}",  # a value is text, never a template or code
            "total": 12.5,
            "items": [1, 2],
            "date_unix": 1764240000,
            "purchases": [{"keap_id": "9", "amount": "12.50", "name": "Course"}],
        }
    )
    assert result.status == "pending", result.error
    note = next(s for s in result.steps if s.action == "note")
    assert note.params["text"] == "{{ body.email }} paid 12.5 [1,2]"
    order = next(s for s in result.steps if s.action == "order")
    assert order.params["order_time"] == "2025-11-27T10:40:00Z"
    assert order.params["items"] == [
        {"type": "PRODUCT", "product_id": 9, "quantity": 1, "price": 12.5, "description": "Course"}
    ]
    assert not any(s.action == "payment" for s in result.steps)  # no payment configured


def test_a_product_id_that_is_not_an_id_makes_the_event_dead() -> None:
    result = plan({"event": "sale", "email": "a@example.com", "purchases": [{"keap_id": "abc"}]})
    assert result.status == "dead"
    assert "route sale: order.items[0]: product_id (keap_id) is not a Keap product id" in (
        result.error or ""
    )


def test_an_amount_that_is_not_a_number_makes_the_event_dead() -> None:
    result = plan(
        {
            "event": "sale",
            "email": "a@example.com",
            "purchases": [{"keap_id": "9", "amount": "12,50 €"}],
        }
    )
    assert result.status == "dead"
    assert "order.items[0].price (amount) is not an amount: '12,50 €'" in (result.error or "")
