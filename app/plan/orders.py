"""Plan a route's ``order`` and ``note`` actions: every selector is read from the event
now, so the steps hold the concrete order (items, prices, payment) and note text.

A value that cannot become part of a Keap order (an unmapped SKU with no fallback, a
price that is not a number) is a ``PlanError``: the event is ``dead`` with its reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.config.models import NoteSpec, OrderSpec
from app.config.selectors import Selector
from app.domain.times import as_utc

ORDER_STEP = "order"
PAYMENT_STEP = "payment"
NOTE_STEP = "note"
# An item's text is cut to this: Keap's limits are not published, a webhook's are not ours.
MAX_TEXT = 1000


class PlanError(ValueError):
    """The event cannot be planned as configured; the message names what and where."""


def plan_order(
    spec: OrderSpec, document: dict[str, Any], received_at: float
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The order step's parameters, and the payment step's (None: no payment). Without a
    date the order is dated ``received_at`` (when its event came in), so a replan plans
    the very same order."""
    order_time = _date(spec.date, document, "order.date") or _iso(received_at)
    elements = spec.items.search(document)
    if isinstance(elements, dict):
        elements = [elements]
    if not isinstance(elements, list) or not elements:
        raise PlanError(f"order.items ({spec.items.expression}) selected no line items")
    items = [_product_item(spec, element, index) for index, element in enumerate(elements)]
    for extra in spec.extra_items:
        price = _money(extra.price, document, f"order.extra_items {extra.type} price")
        if not price:
            continue  # no shipping, no discount: no item
        if extra.type.startswith("DISCOUNT"):
            price = -abs(price)  # senders report discounts as positive amounts
        text = _text(extra.description, document) or extra.type.title()
        items.append(
            {"type": extra.type, "quantity": 1, "price": _number(price), "description": text}
        )
    total = sum(
        (Decimal(str(i["price"])) * i["quantity"] for i in items if i.get("price") is not None),
        Decimal(0),
    )
    order: dict[str, Any] = {
        "title": _text(spec.title, document) or "Order",
        "order_time": order_time,
        "items": items,
        "total": _number(total),
    }
    if spec.order_id is not None and spec.order_id_field is not None:
        sender_id = _text(spec.order_id, document)
        if not sender_id:
            raise PlanError(f"order.order_id ({spec.order_id.expression}) selected nothing")
        order["sender_order_id"] = sender_id
        order["order_id_field"] = spec.order_id_field
    if spec.payment is None:
        return order, None
    amount = _money(spec.payment.amount, document, "order.payment.amount")
    payment_type = _text(spec.payment.type, document)
    if not payment_type:
        raise PlanError(f"order.payment.type ({spec.payment.type.expression}) selected nothing")
    payment: dict[str, Any] = {
        "amount": _number(amount or Decimal(0)),
        "payment_type": payment_type,
        "payment_time": _date(spec.payment.date, document, "order.payment.date") or order_time,
    }
    for key in ("sender_order_id", "order_id_field"):
        if key in order:
            payment[key] = order[key]
    return order, payment


def plan_note(spec: NoteSpec, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": _text(spec.title, document) or "Note",
        "text": spec.body.render(document),
    }


def _product_item(spec: OrderSpec, element: Any, index: int) -> dict[str, Any]:
    where = f"order.items[{index}]"
    item_spec = spec.item
    if item_spec.product_id is not None:
        product = _text(item_spec.product_id, element)
        if not product or not product.isdigit() or int(product) <= 0:
            raise PlanError(
                f"{where}: product_id ({item_spec.product_id.expression}) is not a Keap "
                f"product id: {(product or 'nothing')[:40]!r}"
            )
        product_id = int(product)
    else:
        assert item_spec.sku is not None  # OrderItemSpec has exactly one
        sku = _text(item_spec.sku, element) or ""
        mapped = (spec.products or {}).get(sku)
        if mapped is None and spec.fallback_product is None:
            raise PlanError(
                f"{where}: SKU {sku[:80]!r} is not in the route's products map "
                "(add it, or set fallback_product)"
            )
        product_id = mapped if mapped is not None else spec.fallback_product  # type: ignore[assignment]
    quantity = _quantity(item_spec.quantity, element, where)
    item: dict[str, Any] = {"type": "PRODUCT", "product_id": product_id, "quantity": quantity}
    if item_spec.price is not None:
        price = _money(item_spec.price, element, f"{where}.price")
        if price is not None:
            item["price"] = _number(price)
    if description := _text(item_spec.description, element):
        item["description"] = description
    return item


def _quantity(selector: Selector | None, element: Any, where: str) -> int:
    if selector is None:
        return 1
    value = selector.search(element)
    if value is None or value == "":
        return 1
    try:
        quantity = Decimal(str(value))
    except InvalidOperation:
        quantity = Decimal(0)
    if quantity != quantity.to_integral_value() or quantity < 1:
        raise PlanError(f"{where}.quantity ({selector.expression}) is not a whole number ≥ 1")
    return int(quantity)


def _money(selector: Selector, document: Any, where: str) -> Decimal | None:
    value = selector.search(document)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PlanError(f"{where} ({selector.expression}) is not an amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PlanError(
            f"{where} ({selector.expression}) is not an amount: {str(value)[:40]!r}"
        ) from None
    if not amount.is_finite():
        raise PlanError(f"{where} ({selector.expression}) is not an amount")
    return amount.quantize(Decimal("0.01"))


def _number(amount: Decimal) -> float | int:
    """JSON-ready: whole amounts as integers, others as floats of two decimals."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _date(selector: Selector | None, document: Any, where: str) -> str | None:
    """An ISO-8601 or Unix-seconds date as Keap's ``2024-05-21T23:00:00Z``."""
    if selector is None:
        return None
    value = selector.search(document)
    if value is None or value == "":
        return None
    try:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number or (isinstance(value, str) and value.strip().isdigit()):
            moment = datetime.fromtimestamp(float(value), UTC)
        elif isinstance(value, str):
            moment = as_utc(datetime.fromisoformat(value.strip()))
        else:
            raise ValueError
    except (ValueError, OverflowError, OSError):
        raise PlanError(
            f"{where} ({selector.expression}) is not a date: {str(value)[:40]!r}"
        ) from None
    return _iso(moment.timestamp())


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(selector: Selector | None, document: Any) -> str | None:
    if selector is None:
        return None
    value = selector.search(document)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).replace("\x00", "").strip()
    return text[:MAX_TEXT] or None
