"""How `relay check` tells an order action's plan (used by the action table's ``describe``)."""

from __future__ import annotations

from app.config.models import OrderSpec


def describe_order(order: OrderSpec) -> str:
    """The order plan: where items come from, the product map, the payment."""
    item = order.item
    product = (
        f"product id ← {item.product_id.expression}"
        if item.product_id is not None
        else f"SKU ← {item.sku.expression if item.sku else ''} via {_product_map(order)}"
        + (
            f", else product {order.fallback_product}"
            if order.fallback_product
            else ", an unmapped SKU makes the event dead"
        )
    )
    extras = ", ".join(f"{e.type} ← {e.price.expression}" for e in order.extra_items)
    lines = [
        f"create a Keap order {order.title.expression}: one item per {order.items.expression} "
        f"({product})" + (f"; plus {extras}" if extras else ""),
    ]
    if order.order_id is not None:
        lines.append(
            f"sender order id {order.order_id.expression} → order custom field "
            f"{order.order_id_field} (a replay reuses that order)"
        )
    else:
        lines.append("no order_id_field: a replay from the start creates a second order")
    if order.payment is not None:
        lines.append(
            f"then record a payment of {order.payment.amount.expression} "
            f"({order.payment.type.expression})"
        )
    return "\n       ".join(lines)


def _product_map(order: OrderSpec) -> str:
    pairs = [f"{sku} → {product}" for sku, product in (order.products or {}).items()]
    shown = ", ".join(pairs[:10]) + (f", … ({len(pairs)} in all)" if len(pairs) > 10 else "")
    return f"products {{{shown}}}"
