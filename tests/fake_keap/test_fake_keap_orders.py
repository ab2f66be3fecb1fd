"""The fake's v2 orders, payments and notes answer and refuse as createOrder,
createPaymentForAnOrder and createNote are written (keap-sdk sdks/v2/swagger.yml)."""

from __future__ import annotations

from typing import Any

import httpx

from fake_keap import FakeKeapServer


def create_contact(keap: httpx.Client) -> int:
    body = {"duplicate_option": "Email", "email_addresses": [{"email": "ann@x.test"}]}
    return int(keap.put("/rest/v1/contacts", json=body).json()["id"])


def order_body(contact_id: int, **changes: Any) -> dict[str, Any]:
    return {
        "contact_id": str(contact_id),
        "order_title": "Shop order 1",
        "order_time": "2026-11-27T15:30:00Z",
        "order_type": "ONLINE",
        "order_items": [
            {"item_type": "PRODUCT", "product_id": "5001", "quantity": 2},
            {"item_type": "DISCOUNT", "quantity": 1, "price_per_unit": -5.0, "name": "Discount"},
        ],
        "custom_fields": [{"id": "7", "content": "1001"}],
        **changes,
    }


def test_an_order_is_created_listed_and_paid_once_in_full(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    fake.state.configure(products={5001: 20.0}, known_order_custom_field_ids=frozenset({7}))
    contact_id = create_contact(keap)
    created = keap.post("/rest/v2/orders", json=order_body(contact_id))
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["total"]["amount"] == 3500  # twice the product's 20.00, less 5.00, in cents
    assert order["status"] == "SENT"
    listed = keap.get("/rest/v2/orders", params={"filter": f"contact_id=={contact_id}"}).json()
    assert [o["custom_fields"] for o in listed["orders"]] == [[{"id": "7", "content": "1001"}]]

    def pay(amount: float, kind: str = "Credit Card (Manual)") -> httpx.Response:
        body = {"payment_amount": amount, "payment_method_type": kind, "apply_to_commissions": True}
        return keap.post(f"/rest/v2/orders/{order['id']}/payments", json=body)

    assert pay(35.0, "Cheque").status_code == 400  # not a configured manual payment type
    assert pay(35.01).status_code == 400  # more than the balance
    assert pay(35.0).status_code == 201
    after = keap.get(f"/rest/v2/orders/{order['id']}").json()
    assert (after["status"], after["total_paid"]["amount"]) == ("PAID", 3500)
    assert pay(1.0).status_code == 400  # nothing left to pay


def test_an_order_naming_an_unknown_product_or_field_is_refused(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    fake.state.configure(products={5001: 20.0}, known_order_custom_field_ids=frozenset({7}))
    contact_id = create_contact(keap)
    items = [{"item_type": "PRODUCT", "product_id": "5002", "quantity": 1}]
    refused = keap.post("/rest/v2/orders", json=order_body(contact_id, order_items=items))
    assert refused.status_code == 400
    assert "Invalid product id: 5002" in refused.text
    fields = [{"id": "8", "content": "x"}]
    refused = keap.post("/rest/v2/orders", json=order_body(contact_id, custom_fields=fields))
    assert refused.status_code == 400
    assert (
        keap.post("/rest/v2/orders", json=order_body(contact_id, order_time="")).status_code == 400
    )
    assert fake.state.orders == []


def test_a_note_needs_a_user_id(fake: FakeKeapServer, keap: httpx.Client) -> None:
    contact_id = create_contact(keap)
    path = f"/rest/v2/contacts/{contact_id}/notes"
    assert keap.post(path, json={"title": "Sale", "text": "x"}).status_code == 400
    made = keap.post(path, json={"title": "Sale", "text": "Bought it", "user_id": "3"})
    assert made.status_code == 201
    [note] = fake.state.notes
    assert (note.contact_id, note.text, note.user_id) == (contact_id, "Bought it", 3)


def test_v2_refusals_answer_the_v2_error_schema_and_v1_refusals_v1s(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    """v2: ``Error {code, message, status}`` (sdks/v2/swagger.yml, components.schemas.Error);
    v1: ``{"message"}``."""
    fake.state.configure(products={5001: 20.0})
    refused = keap.post("/rest/v2/orders", json={"order_title": "no contact"})
    assert refused.status_code == 400
    assert refused.json() == {
        "code": 400,
        "message": refused.json()["message"],
        "status": "Bad Request",
    }
    assert "contact_id" in refused.json()["message"]

    unknown = keap.get("/rest/v2/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == 404
    assert unknown.json()["status"] == "Not Found"

    v1 = keap.put("/rest/v1/contacts", json={"duplicate_option": "Email"})
    assert v1.status_code == 400
    assert set(v1.json()) == {"message"}
