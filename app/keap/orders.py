"""REST v2 orders, payments and notes as Keap writes them (keap-sdk sdks/v2/swagger.yml:
RestCreateOrderRequest, CreateOrderItemRequest, OrderV2, ListOrders,
RestCreatePaymentRequest, PaymentResult, CreateNoteRequest; docs/keap-api.md).

The client (``app.keap.client``) makes the calls; this module builds their bodies and
reads their answers.
"""

from __future__ import annotations

from typing import Any

from app.keap.errors import KeapPermanentError

# CreateOrderItemRequest.item_type's values; an order's products are PRODUCT items, the
# others are what a route's ``extra_items`` may add.
ORDER_ITEM_TYPES = (
    "PRODUCT",
    "SHIPPING",
    "TAX",
    "FINANCE_CHARGE",
    "SUBSCRIPTION",
    "DISCOUNT",
    "DISCOUNT_FREE_TRIAL",
    "DISCOUNT_ORDER_TOTAL",
    "DISCOUNT_PRODUCT",
    "DISCOUNT_PRODUCT_CATEGORY",
    "DISCOUNT_SHIPPING",
    "OTHER",
    "FEE",
)
EXTRA_ITEM_TYPES = tuple(t for t in ORDER_ITEM_TYPES if t not in ("PRODUCT", "SUBSCRIPTION"))


def order_request(contact_id: int, order: dict[str, Any]) -> dict[str, Any]:
    """A planned order (``app.plan.orders``) as RestCreateOrderRequest: ids as strings,
    ``order_type`` ONLINE (a checkout), the sender's order id in its custom field."""
    body: dict[str, Any] = {
        "contact_id": str(int(contact_id)),
        "order_title": order["title"],
        "order_time": order["order_time"],
        "order_type": "ONLINE",
        "order_items": [_item_request(item) for item in order["items"]],
    }
    if order.get("order_id_field") and order.get("sender_order_id"):
        body["custom_fields"] = [
            {"id": str(int(order["order_id_field"])), "content": order["sender_order_id"]}
        ]
    return body


def _item_request(item: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"item_type": item["type"], "quantity": int(item["quantity"])}
    if item.get("product_id") is not None:
        request["product_id"] = str(int(item["product_id"]))
    if item.get("price") is not None:
        request["price_per_unit"] = item["price"]
    if item.get("description"):
        request["description"] = item["description"]
        if item["type"] != "PRODUCT":  # a product item is named after its product
            request["name"] = item["description"]
    return request


def payment_request(payment: dict[str, Any]) -> dict[str, Any]:
    """RestCreatePaymentRequest for a manual payment record (no payment_method_id)."""
    return {
        "payment_amount": payment["amount"],
        "payment_method_type": payment["payment_type"],
        "payment_time": payment["payment_time"],
        "apply_to_commissions": True,
    }


def find_in_orders(payload: Any, field_id: int, sender_order_id: str) -> tuple[int | None, str]:
    """(the id of the order whose custom field ``field_id`` holds the sender's order id,
    the next page token) in a ListOrders answer."""
    orders = payload.get("orders") if isinstance(payload, dict) else None
    for order in orders if isinstance(orders, list) else []:
        if not isinstance(order, dict):
            continue
        for custom in order.get("custom_fields") or []:
            if (
                isinstance(custom, dict)
                and str(custom.get("id")) == str(field_id)
                and str(custom.get("content")) == sender_order_id
            ):
                return keap_id("order.find", order.get("id"), "order"), ""
    token = payload.get("next_page_token") if isinstance(payload, dict) else None
    return None, token if isinstance(token, str) else ""


def is_paid(order: Any) -> bool:
    """An OrderV2 that already has a payment: status PAID or some total_paid."""
    if not isinstance(order, dict):
        return False
    paid = order.get("total_paid")
    amount = paid.get("amount") if isinstance(paid, dict) else None
    return order.get("status") == "PAID" or (isinstance(amount, int | float) and amount > 0)


def keap_id(operation: str, value: Any, what: str) -> int:
    """A v2 id (a string of digits) from an answer, or a permanent failure naming it."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    raise KeapPermanentError(operation, f"Keap answered without the {what}'s id")
