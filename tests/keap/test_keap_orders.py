"""Orders, payments and notes: the REST v2 requests the client sends and how it reads
Keap's answers (keap-sdk sdks/v2/swagger.yml; docs/keap-api.md)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from app.keap.errors import KeapPermanentError, KeapTransientError

from .keap_fakes import BASE_URL, Harness

ORDERS_URL = f"{BASE_URL}/rest/v2/orders"
ORDER: dict[str, Any] = {
    "title": "Shop order 1001",
    "order_time": "2026-11-27T15:30:00Z",
    "items": [
        {
            "type": "PRODUCT",
            "product_id": 5001,
            "quantity": 2,
            "price": 20.0,
            "description": "Bump",
        },
        {"type": "DISCOUNT", "quantity": 1, "price": -5.0, "description": "Discount"},
    ],
    "total": 35.0,
    "sender_order_id": "1001",
    "order_id_field": 7,
}


def listed(*orders: dict[str, Any], token: str = "") -> httpx.Response:
    return httpx.Response(200, json={"orders": list(orders), "next_page_token": token})


async def test_create_order_sends_the_v2_request_after_finding_none(
    harness: Harness, keap: respx.MockRouter
) -> None:
    find = keap.get(ORDERS_URL).mock(return_value=listed({"id": "9", "custom_fields": []}))
    create = keap.post(ORDERS_URL).respond(201, json={"id": "5123", "status": "SENT"})
    result = await harness.client().create_order(48, ORDER)
    assert result == {"keap_order_id": 5123, "reused": False}
    assert find.calls.last.request.url.params["filter"] == "contact_id==48"
    assert json.loads(create.calls.last.request.content) == {
        "contact_id": "48",
        "order_title": "Shop order 1001",
        "order_time": "2026-11-27T15:30:00Z",
        "order_type": "ONLINE",
        "order_items": [
            {
                "item_type": "PRODUCT",
                "quantity": 2,
                "product_id": "5001",
                "price_per_unit": 20.0,
                "description": "Bump",
            },
            {
                "item_type": "DISCOUNT",
                "quantity": 1,
                "price_per_unit": -5.0,
                "description": "Discount",
                "name": "Discount",
            },
        ],
        "custom_fields": [{"id": "7", "content": "1001"}],
    }


async def test_an_order_holding_the_sender_id_on_a_later_page_is_reused(
    harness: Harness, keap: respx.MockRouter
) -> None:
    other = {"id": "40", "custom_fields": [{"id": "7", "content": "999"}]}
    mine = {
        "id": "41",
        "custom_fields": [{"id": "8", "content": "x"}, {"id": "7", "content": "1001"}],
    }
    find = keap.get(ORDERS_URL).mock(side_effect=[listed(other, token="p2"), listed(mine)])
    create = keap.post(ORDERS_URL).respond(201, json={"id": "1"})
    result = await harness.client().create_order(48, ORDER)
    assert result == {"keap_order_id": 41, "reused": True}
    assert find.calls[1].request.url.params["page_token"] == "p2"
    assert not create.called


async def test_a_failed_lookup_is_safe_to_retry(harness: Harness, keap: respx.MockRouter) -> None:
    keap.get(ORDERS_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(KeapTransientError) as caught:
        await harness.client().create_order(48, ORDER)
    assert caught.value.maybe_applied is False  # nothing was created: retrying is harmless


async def test_a_lost_create_answer_may_have_applied(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(ORDERS_URL).mock(return_value=listed())
    keap.post(ORDERS_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(KeapTransientError) as caught:
        await harness.client().create_order(48, ORDER)
    assert caught.value.maybe_applied is True


@pytest.mark.parametrize(
    "order", [{"status": "PAID"}, {"status": "SENT", "total_paid": {"amount": 1000}}]
)
async def test_a_paid_order_is_not_paid_again(
    harness: Harness, keap: respx.MockRouter, order: dict[str, Any]
) -> None:
    keap.get(f"{ORDERS_URL}/41").respond(200, json={"id": "41", **order})
    pay = keap.post(f"{ORDERS_URL}/41/payments").respond(201, json={"id": "3"})
    payment = {"amount": 35.0, "payment_type": "Check", "payment_time": "2026-11-27T15:31:00Z"}
    result = await harness.client().record_payment(41, payment)
    assert result == {"keap_order_id": 41, "already_paid": True}
    assert not pay.called


async def test_an_unpaid_order_gets_a_manual_payment(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(f"{ORDERS_URL}/41").respond(
        200, json={"id": "41", "status": "SENT", "total_paid": {"amount": 0}}
    )
    pay = keap.post(f"{ORDERS_URL}/41/payments").respond(201, json={"id": "3"})
    payment = {"amount": 35.0, "payment_type": "Check", "payment_time": "2026-11-27T15:31:00Z"}
    result = await harness.client().record_payment(41, payment)
    assert result == {"keap_order_id": 41, "keap_payment_id": 3}
    assert json.loads(pay.calls.last.request.content) == {
        "payment_amount": 35.0,
        "payment_method_type": "Check",
        "payment_time": "2026-11-27T15:31:00Z",
        "apply_to_commissions": True,
    }


async def test_a_refused_payment_type_is_permanent(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(f"{ORDERS_URL}/41").respond(200, json={"id": "41", "status": "SENT"})
    keap.post(f"{ORDERS_URL}/41/payments").respond(
        400, json={"message": "Invalid payment method type: Cheque"}
    )
    payment = {"amount": 35.0, "payment_type": "Cheque", "payment_time": "2026-11-27T15:31:00Z"}
    with pytest.raises(KeapPermanentError) as caught:
        await harness.client().record_payment(41, payment)
    assert "Invalid payment method type" in caught.value.detail


async def test_a_note_is_posted_by_the_discovered_user(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(f"{BASE_URL}/rest/v2/oauth/connect/userinfo").respond(200, json={"sub": "12"})
    note = keap.post(f"{BASE_URL}/rest/v2/contacts/48/notes").respond(201, json={"id": "77"})
    assert await harness.client().add_note(48, "Sale", "Bought it") == 77
    assert json.loads(note.calls.last.request.content) == {
        "title": "Sale",
        "text": "Bought it",
        "user_id": "12",
    }
