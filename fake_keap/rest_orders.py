"""REST v2 orders, payments and notes (keap-sdk sdks/v2/swagger.yml, docs/keap-api.md)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from app.keap.orders import ORDER_ITEM_TYPES as KEAP_ORDER_ITEM_TYPES
from fake_keap.records import Order, OrderItem
from fake_keap.rest_common import (
    BadRequest,
    RestHandler,
    amount_cents,
    integer,
    json_object,
    optional_str,
    string_id,
)
from fake_keap.routing import RestRoute
from fake_keap.state import FakeKeapState

# CreateOrderItemRequest.item_type's enum, as the client's module lists it.
ORDER_ITEM_TYPES = frozenset(KEAP_ORDER_ITEM_TYPES)


def _currency(cents: int) -> dict[str, Any]:
    """CurrencyValue: the amount in the smallest currency unit."""
    sign = "-" if cents < 0 else ""
    return {
        "amount": cents,
        "currency_code": "USD",
        "formatted_amount": f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}",
    }


def _order_item(state: FakeKeapState, raw: object) -> OrderItem:
    if not isinstance(raw, dict):
        raise BadRequest("order_items must be objects")
    item_type = raw.get("item_type", "PRODUCT")
    if item_type not in ORDER_ITEM_TYPES:
        raise BadRequest(f"Invalid item_type: {item_type}")
    quantity = integer(raw.get("quantity"), "quantity")
    product_id = (
        None if raw.get("product_id") is None else string_id(raw["product_id"], "product_id")
    )
    if raw.get("price_per_unit") is not None:
        price = amount_cents(raw["price_per_unit"], "price_per_unit")
    else:  # "if not specified, the product price will be used"
        price = round((state.behaviour.products or {}).get(product_id or 0, 0.0) * 100)
    return OrderItem(
        item_type=item_type,
        quantity=quantity,
        price_cents=price,
        product_id=product_id,
        name=optional_str(raw, "name"),
        description=optional_str(raw, "description"),
    )


def order_json(order: Order, paid_cents: int) -> dict[str, Any]:
    """OrderV2: ids as strings, amounts as CurrencyValue, custom fields as {id, content}."""
    return {
        "id": str(order.id),
        "title": order.title,
        "status": "PAID" if order.items and paid_cents >= order.total_cents else "SENT",
        "order_type": order.order_type,
        "source_type": "API",
        "order_time": order.order_time,
        "contact": {"id": str(order.contact_id)},
        "total": _currency(order.total_cents),
        "total_paid": _currency(paid_cents),
        "total_due": _currency(order.total_cents - paid_cents),
        "order_items": [
            {
                "id": str(index),
                "item_type": item.item_type,
                "quantity": item.quantity,
                "name": item.name,
                "description": item.description,
                "price_per_unit": _currency(item.price_cents),
                "product": None if item.product_id is None else {"id": str(item.product_id)},
            }
            for index, item in enumerate(order.items, start=1)
        ],
        "custom_fields": [{"id": str(k), "content": v} for k, v in order.custom_fields.items()],
    }


def _create_order(
    state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]
) -> Response:
    """v2 ``POST /orders`` (RestCreateOrderRequest: contact_id, order_time, order_title
    and order_type are required); 201 with the OrderV2."""
    payload = json_object(body)
    for name in ("contact_id", "order_time", "order_title", "order_type"):
        if payload.get(name) in (None, ""):
            raise BadRequest(f"{name} is required")
    if payload["order_type"] not in ("ONLINE", "OFFLINE"):
        raise BadRequest(f"Invalid order_type: {payload['order_type']}")
    raw_items = payload.get("order_items") or []
    if not isinstance(raw_items, list):
        raise BadRequest("order_items must be a list")
    custom: dict[int, object] = {}
    for field in payload.get("custom_fields") or []:
        if not isinstance(field, dict):
            raise BadRequest("custom_fields must be objects")
        custom[string_id(field.get("id"), "custom_fields[].id")] = field.get("content")
    order = Order(
        id=0,
        contact_id=string_id(payload["contact_id"], "contact_id"),
        title=str(payload["order_title"]),
        order_time=str(payload["order_time"]),
        order_type=str(payload["order_type"]),
        items=tuple(_order_item(state, raw) for raw in raw_items),
        custom_fields=custom,
    )
    with state.editing_crm() as crm:
        created = crm.create_order(order, state.behaviour)
    return JSONResponse(order_json(created, 0), status_code=201)


def _list_orders(
    state: FakeKeapState, route: RestRoute, _: bytes, query: dict[str, str]
) -> Response:
    """v2 ``GET /orders?filter=contact_id==…`` (ListOrders); this fake filters by
    contact_id only and answers one page."""
    field, __, value = query.get("filter", "").partition("==")
    if field != "contact_id":
        raise BadRequest("this fake filters orders by contact_id only")
    contact_id = string_id(value, "contact_id")
    with state.editing_crm() as crm:
        orders = [
            order_json(o, crm.paid_cents(o.id))
            for o in crm.orders.values()
            if o.contact_id == contact_id
        ]
    return JSONResponse({"orders": orders, "next_page_token": ""})


def _get_order(state: FakeKeapState, route: RestRoute, _: bytes, __: dict[str, str]) -> Response:
    order_id = int(route.params["order_id"])
    with state.editing_crm() as crm:
        return JSONResponse(order_json(crm.order(order_id), crm.paid_cents(order_id)))


def _create_payment(
    state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]
) -> Response:
    """v2 ``POST /orders/{id}/payments`` (RestCreatePaymentRequest: payment_amount and
    apply_to_commissions required; payment_method_type must match a configured manual
    payment type); 201 with the PaymentResult."""
    payload = json_object(body)
    if not isinstance(payload.get("apply_to_commissions"), bool):
        raise BadRequest("apply_to_commissions is required")
    amount = amount_cents(payload.get("payment_amount"), "payment_amount")
    if payload.get("payment_method_id") is not None:
        raise BadRequest("this fake records manual payments only (payment_method_type)")
    payment_type = optional_str(payload, "payment_method_type")
    if not payment_type:
        raise BadRequest("At least one of payment_method_id or payment_method_type is required")
    order_id = int(route.params["order_id"])
    with state.editing_crm() as crm:
        payment = crm.add_payment(
            order_id, amount, payment_type, optional_str(payload, "payment_time"), state.behaviour
        )
    return JSONResponse(
        {
            "id": str(payment.id),
            "invoice_id": str(order_id),
            "payment_amount": amount / 100,
            "payment_status_message": "APPROVED",
        },
        status_code=201,
    )


def _create_note(
    state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]
) -> Response:
    """v2 ``POST /contacts/{id}/notes`` (CreateNoteRequest: user_id required, and a title
    or type); 201 with the Note."""
    payload = json_object(body)
    user_id = string_id(payload.get("user_id"), "user_id")
    contact_id = int(route.params["contact_id"])
    with state.editing_crm() as crm:
        note = crm.add_note(
            contact_id, optional_str(payload, "title"), optional_str(payload, "text"), user_id
        )
    return JSONResponse(
        {
            "id": str(note.id),
            "contact_id": str(contact_id),
            "title": note.title,
            "text": note.text,
            "created_by_user_id": str(user_id),
        },
        status_code=201,
    )


ORDER_HANDLERS: dict[str, RestHandler] = {
    "order.find": _list_orders,
    "order.create": _create_order,
    "order.get": _get_order,
    "payment.create": _create_payment,
    "note.create": _create_note,
}
