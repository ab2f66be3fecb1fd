"""The fault scenario's sender, shared by the fault tests (tests/faults/) and the soak
(bench/soak.py): a cart whose token is checked, one route that upserts the contact, tags
it and runs an action set (which must never run twice), and orders with one contact each,
so action set runs count per event."""

from __future__ import annotations

from typing import Any

TOKEN = "t0ken"
TOKEN_HEADER = "x-token"
ACTION_SET = 42


def cart_yaml(*more_actions: str) -> str:
    """relay.yaml: the ``cart`` source and its ``order`` route (tags, the action set, then
    ``more_actions``, each a YAML flow value such as ``"email_template: 55"``)."""
    actions = ["tags: [500]", f"action_set: {ACTION_SET}", *more_actions]
    listed = "".join(f"      - {action}\n" for action in actions)
    return f"""
sources:
  cart:
    verify: {{scheme: token, secret: {TOKEN}, at: 'headers."{TOKEN_HEADER}"'}}
    event_type: body.event
    event_id: body.id
routes:
  - name: order
    source: cart
    event: order.paid
    contact: {{email: body.email}}
    actions:
{listed}"""


def order(i: int, prefix: str = "o") -> dict[str, Any]:
    """One order; every order has its own contact."""
    return {"event": "order.paid", "id": f"{prefix}-{i}", "email": f"{prefix}{i}@example.com"}


def headers() -> dict[str, str]:
    """What the cart sends with each order: its token."""
    return {TOKEN_HEADER: TOKEN}
