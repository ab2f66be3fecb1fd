"""Re-planning a stored event: which steps keep their state under the new relay.yaml."""

from __future__ import annotations

from typing import Any

from app.domain.events import EventRecord, StepRecord
from app.plan.planner import plan_event
from app.plan.replan import replan_event
from tests.conftest import make_config

HEAD = """
sources:
  cart:
    verify: {scheme: token, secret: t0ken, at: 'headers."x-token"'}
    event_type: body.event
routes:
"""
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


def stored(yaml: str, statuses: list[str]) -> EventRecord:
    """An event planned under ``yaml`` whose steps reached ``statuses``."""
    document = {"headers": {}, "body": BODY, "query": {}}
    plan = plan_event(config(yaml), "cart", "order.paid", document)
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
        received_at=0.0,
        contact_email="Ada@Example.com",
        contact_id=7,
        attempts=1,
        next_attempt_at=None,
        first_failure_at=None,
        last_error="action_set: retired",
        routes=plan.routes,
        payload=BODY,
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
