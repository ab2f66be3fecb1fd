"""The headers a sender attaches besides its signature — the event's topic, its delivery
id, the time — so that `relay sign` prints a request the relay both accepts and routes.

Shopify and WooCommerce name the event and its delivery only in headers (the relay reads
its event type and id from there by default); any source whose ``event_type`` or
``event_id`` selector reads a header gets that header too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jmespath

from app.config.models import Source


def sender_headers(source: Source, event_type: str | None, now: float) -> dict[str, str]:
    """Topic, id and time headers for one new delivery (a fresh id each call).

    ``event_type`` fills the headers the event type is read from; None when it is read
    from the body.
    """
    delivery_id = str(uuid.uuid4())
    headers: dict[str, str] = {}
    if source.verify.scheme == "shopify":  # shopify.dev/docs/apps/build/webhooks (headers)
        headers["X-Shopify-Topic"] = event_type or ""
        headers["X-Shopify-Webhook-Id"] = delivery_id
        headers["X-Shopify-Triggered-At"] = datetime.fromtimestamp(now, UTC).isoformat()
    elif source.verify.scheme == "woocommerce":
        # WC_Webhook::deliver (class-wc-webhook.php): topic = resource.event; the delivery
        # id is get_new_delivery_id(), a wp_hash (32 hex digits).
        resource, _, action = (event_type or "").partition(".")
        headers["X-WC-Webhook-Topic"] = event_type or ""
        headers["X-WC-Webhook-Resource"] = resource
        headers["X-WC-Webhook-Event"] = action
        headers["X-WC-Webhook-Delivery-ID"] = uuid.UUID(delivery_id).hex
    present = {name.lower() for name in headers}
    for name in header_names(source.event_type_selector.expression):
        if name not in present and event_type is not None:
            headers[name] = event_type
    if (selector := source.event_id_selector) is not None:
        for name in header_names(selector.expression):
            if name not in present and name not in headers:
                headers[name] = delivery_id
    return {name: value for name, value in headers.items() if value}


def reads_headers(source: Source) -> bool:
    """Whether the event type is read from a header (so the caller must name it)."""
    return bool(header_names(source.event_type_selector.expression))


def header_names(expression: str) -> list[str]:
    """The (lower-case) header names a selector reads: every ``headers.<name>``."""
    names: list[str] = []
    _walk(jmespath.compile(expression).parsed, names)
    return names


def _walk(node: Any, names: list[str]) -> None:
    if not isinstance(node, dict):
        return
    children = node.get("children") or []
    if node.get("type") == "subexpression" and len(children) == 2:
        first, second = children
        reads_a_header = first == {"type": "field", "children": [], "value": "headers"}
        if reads_a_header and second.get("type") == "field":
            name = str(second["value"]).lower()
            if name not in names:
                names.append(name)
    for child in children:
        _walk(child, names)
