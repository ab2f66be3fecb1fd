"""A contact's fields as the REST v1 upsert body. Fields with no value are left out, so an
upsert never blanks what Keap already holds."""

from __future__ import annotations

from typing import Any

from app.keap.models import ContactFields


def rest_upsert_body(fields: ContactFields, company_id: int | None = None) -> dict[str, Any]:
    """``company_id``: the contact's company, which Keap takes by reference only."""
    body: dict[str, Any] = {
        "duplicate_option": "Email",
        "email_addresses": [{"email": fields.email, "field": "EMAIL1"}],
    }
    if fields.given_name:
        body["given_name"] = fields.given_name
    if fields.family_name:
        body["family_name"] = fields.family_name
    if fields.phone:
        body["phone_numbers"] = [{"number": fields.phone, "field": "PHONE1"}]
    if company_id is not None:
        body["company"] = {"id": int(company_id)}
    if fields.opt_in_reason:
        body["opt_in_reason"] = fields.opt_in_reason
    custom = [
        {"id": int(field_id), "content": value}
        for field_id, value in fields.custom_fields.items()
        if value is not None
    ]
    if custom:
        body["custom_fields"] = custom
    return body
