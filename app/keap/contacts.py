"""A contact's fields in the two shapes Keap takes them: the REST v1 upsert body and the
XML-RPC ``addWithDupCheck`` struct. Fields with no value are left out, so an upsert never
blanks what Keap already holds."""

from __future__ import annotations

from typing import Any

from app.keap.models import ContactFields


def rest_upsert_body(fields: ContactFields) -> dict[str, Any]:
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
    if fields.company:
        body["company"] = {"company_name": fields.company}
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


def xmlrpc_contact_struct(fields: ContactFields) -> dict[str, str]:
    """The fallback's struct. XML-RPC names custom fields ("_Name"), not ids, and opts in
    through another call, so custom fields and the opt-in reason are REST-only."""
    named = {
        "Email": fields.email,
        "FirstName": fields.given_name,
        "LastName": fields.family_name,
        "Phone1": fields.phone,
        "Company": fields.company,
    }
    return {name: value for name, value in named.items() if value}
