"""Re-planning a stored event: which steps keep their state under the new relay.yaml."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.domain.events import EventRecord, StepRecord
from app.plan.planner import plan_event
from app.plan.replan import replan_event
from devkit.cart import cart_source
from tests.conftest import make_config

HEAD = f"{cart_source()}routes:\n"
PAID = """
  - name: paid
    source: cart
    event: order.paid
    contact: {email: body.email%s}
    actions:
%s
"""
BODY = {"event": "order.paid", "email": "Ada@Example.com", "name": "Ada", "alt": "b@example.com"}


def config(*routes: str) -> Any:
    return make_config(HEAD + "".join(routes))


def stored(
    yaml: str,
    statuses: list[str],
    body: dict[str, Any] = BODY,
    received_at: float = 0.0,
) -> EventRecord:
    """An event planned under ``yaml`` whose steps reached ``statuses``."""
    document = {"headers": {}, "body": body, "query": {}}
    plan = plan_event(config(yaml), "cart", "order.paid", document, received_at=received_at)
    steps = [
        StepRecord(i, s.route, s.action, s.params, status, 1, None, {"contact_id": 7})
        for i, (s, status) in enumerate(zip(plan.steps, statuses, strict=True))
    ]
    return EventRecord(
        id="evt_1",
        seq=1,
        source="cart",
        event_type="order.paid",
        external_id=None,
        status="dead",
        received_at=received_at,
        contact_email="Ada@Example.com",
        contact_id=7,
        attempts=1,
        next_attempt_at=None,
        first_failure_at=None,
        last_error="action_set: retired",
        routes=plan.routes,
        payload=body,
        steps=steps,
    )


def states(yaml: str, record: EventRecord) -> list[tuple[str, str]]:
    replanned = replan_event(config(yaml), record)
    assert replanned is not None
    assert [s.idx for s in replanned.steps] == list(range(len(replanned.steps)))
    return [(s.action, s.status) for s in replanned.steps]


OLD = PAID % ("", "      - email_template: 55\n      - action_set: 42\n      - tags: [101]")


def test_done_steps_keep_their_state_and_the_new_goal_is_pending() -> None:
    record = stored(OLD, ["done", "done", "failed", "done"])
    actions = ["email_template: 55", "goal: {integration: s, call_name: p}", "tags: [101]"]
    new = PAID % ("", "\n".join(f"      - {action}" for action in actions))
    assert states(new, record) == [
        ("contact.upsert", "done"),
        ("email_template", "done"),
        ("goal", "pending"),
        ("tags", "done"),
    ]


def test_a_step_moved_behind_a_new_route_is_still_the_same_call() -> None:
    record = stored(OLD, ["done", "done", "failed", "done"])
    first = """
  - name: audit
    source: cart
    event: order.paid
    contact: {email: body.alt}
    actions:
      - tags: [9]
"""
    # The paid route's upsert is now step 2, not 0: its steps still match by contact email.
    assert states(first + OLD.replace("      - action_set: 42\n", ""), record) == [
        ("contact.upsert", "pending"),
        ("tags", "pending"),
        ("contact.upsert", "done"),
        ("email_template", "done"),
        ("tags", "done"),
    ]


def test_changed_contact_fields_rerun_the_upsert_but_keep_the_actions() -> None:
    record = stored(OLD, ["done", "done", "failed", "done"])
    new = PAID % (", given_name: body.name", "      - email_template: 55\n      - tags: [101]")
    assert states(new, record) == [
        ("contact.upsert", "pending"),
        ("email_template", "done"),
        ("tags", "done"),
    ]


def test_a_step_for_another_contact_is_another_call() -> None:
    record = stored(OLD, ["done", "done", "failed", "done"])
    new = (PAID % ("", "      - email_template: 55")).replace("body.email", "body.alt")
    assert states(new, record) == [("contact.upsert", "pending"), ("email_template", "pending")]


def test_a_repeated_step_is_carried_only_as_often_as_it_ran() -> None:
    twice = PAID % ("", "      - tags: [101]\n      - tags: [101]")
    record = stored(twice, ["done", "done", "failed"])
    assert states(twice, record) == [
        ("contact.upsert", "done"),
        ("tags", "done"),
        ("tags", "pending"),
    ]


def test_nothing_to_deliver_under_the_new_config_is_none() -> None:
    record = stored(OLD, ["done", "done", "failed", "done"])
    elsewhere = (PAID % ("", "      - tags: [1]")).replace("order.paid", "order.refunded")
    assert replan_event(config(elsewhere), record) is None


ORDER = PAID % (
    "",
    "      - order:\n"
    "          title: \"'Shop order'\"\n"
    "          items: body.items\n"
    "          item: {product_id: id, price: price}\n"
    "          payment: {amount: body.total, type: \"'Credit Card (Manual)'\"}",
)
ORDER_BODY = {**BODY, "items": [{"id": "9", "price": "12.50"}], "total": "12.50"}
RECEIVED = 1_764_240_000.0  # 2025-11-27 10:40 UTC


def stored_order(monkeypatch: pytest.MonkeyPatch, planned_at: float) -> EventRecord:
    """An order event whose upsert, order and payment ran; the clock read ``planned_at``
    while it was planned (the order has no date selector)."""
    monkeypatch.setattr(time, "time", lambda: planned_at)
    return stored(ORDER, ["done"] * 3, ORDER_BODY, RECEIVED)


def test_an_order_without_a_date_is_dated_when_its_event_came_in() -> None:
    document = {"headers": {}, "body": ORDER_BODY, "query": {}}
    plan = plan_event(config(ORDER), "cart", "order.paid", document, received_at=RECEIVED)
    order, payment = plan.steps[1].params, plan.steps[2].params
    assert order["order_time"] == payment["payment_time"] == "2025-11-27T10:40:00Z"


def test_a_replan_a_day_later_does_not_create_the_order_or_its_payment_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = stored_order(monkeypatch, planned_at=RECEIVED)
    monkeypatch.setattr(time, "time", lambda: RECEIVED + 86_400)
    assert states(ORDER, record) == [
        ("contact.upsert", "done"),
        ("order", "done"),
        ("payment", "done"),
    ]


def test_an_order_planned_by_an_older_relay_at_another_second_is_still_the_same_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the date came from the event, it came from the clock while planning: a
    stored order may carry a time a few seconds (or a replay) away from received_at."""
    record = stored_order(monkeypatch, planned_at=RECEIVED)
    for step in record.steps[1:]:
        key = "order_time" if step.action == "order" else "payment_time"
        step.params[key] = "2025-11-28T08:00:00Z"
    assert states(ORDER, record) == [
        ("contact.upsert", "done"),
        ("order", "done"),
        ("payment", "done"),
    ]
