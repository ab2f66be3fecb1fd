"""The fault scenario's sender, shared by the fault tests (tests/faults/) and the soak
(bench/soak.py): a cart whose token is checked, one route that upserts the contact, tags
it and runs an action set (which must never run twice), and orders with one contact each,
so action set runs count per event."""

from __future__ import annotations

from typing import Any

TOKEN = "t0ken"
TOKEN_HEADER = "x-token"
ACTION_SET = 42


def cart_source(event_id: str = "body.id") -> str:
    """relay.yaml's ``sources`` for the ``cart``: its token checked in its header (what
    ``headers()`` sends), the event type in ``body.event``, its id at ``event_id``. The
    ``routes`` follow it."""
    return f"""
sources:
  cart:
    verify: {{scheme: token, secret: {TOKEN}, at: 'headers."{TOKEN_HEADER}"'}}
    event_type: body.event
    event_id: {event_id}
"""


def order_yaml(*actions: str) -> str:
    """relay.yaml: the ``cart`` source and its ``order`` route, which upserts the contact
    by ``body.email`` and runs ``actions`` (each a YAML flow value such as
    ``"email_template: 55"``)."""
    listed = "".join(f"      - {action}\n" for action in actions)
    return f"""{cart_source()}routes:
  - name: order
    source: cart
    event: order.paid
    contact: {{email: body.email}}
    actions:
{listed}"""


def cart_yaml(*more_actions: str) -> str:
    """The scenario's relay.yaml: the ``order`` route tags, runs the action set, then
    ``more_actions``."""
    return order_yaml("tags: [500]", f"action_set: {ACTION_SET}", *more_actions)


def order(i: int, prefix: str = "o") -> dict[str, Any]:
    """One order; every order has its own contact."""
    return {"event": "order.paid", "id": f"{prefix}-{i}", "email": f"{prefix}{i}@example.com"}


def headers() -> dict[str, str]:
    """What the cart sends with each order: its token."""
    return {TOKEN_HEADER: TOKEN}
