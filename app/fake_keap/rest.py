"""REST v1 handlers: translate a request into a ``CrmData`` change and Keap's answer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from app.fake_keap.crm_data import ContactFields, CrmError, DuplicateOption
from app.fake_keap.records import Contact
from app.fake_keap.routing import RestRoute
from app.fake_keap.state import FakeKeapState

RestHandler = Callable[[FakeKeapState, RestRoute, bytes, dict[str, str]], Response]


class BadRequest(Exception):
    pass


def message(status: int, text: str) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status)


def handle_rest(
    state: FakeKeapState, route: RestRoute, body: bytes, query: dict[str, str]
) -> Response:
    handler = _HANDLERS.get(route.operation)
    if handler is None:
        return message(404, "Resource not found")
    try:
        return handler(state, route, body, query)
    except BadRequest as exc:
        return message(400, str(exc))
    except CrmError as exc:
        return message(exc.http_status, str(exc))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"null")
    except ValueError as exc:
        raise BadRequest(f"Malformed JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("Expected a JSON object")
    return parsed


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be an integer")
    return value


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def _contact_fields(body: dict[str, Any]) -> ContactFields:
    emails = body.get("email_addresses")
    if not isinstance(emails, list) or not emails or not isinstance(emails[0], dict):
        raise BadRequest("email_addresses is required for duplicate_option Email")
    email = emails[0].get("email")
    if not isinstance(email, str):
        raise BadRequest("email_addresses[0].email must be a string")
    phones = body.get("phone_numbers") or []
    if not isinstance(phones, list) or not all(isinstance(p, dict) for p in phones):
        raise BadRequest("phone_numbers must be a list of objects")
    company = body.get("company")
    if company is not None and not isinstance(company, dict):
        raise BadRequest("company must be an object")
    custom = body.get("custom_fields")
    if custom is not None and (
        not isinstance(custom, list) or not all(isinstance(f, dict) for f in custom)
    ):
        raise BadRequest("custom_fields must be a list of objects")
    return ContactFields(
        email=email,
        given_name=_optional_str(body, "given_name"),
        family_name=_optional_str(body, "family_name"),
        phone=phones[0].get("number") if phones else None,
        company=company.get("company_name") if company else None,
        opt_in_reason=_optional_str(body, "opt_in_reason"),
        custom_fields=(
            {_int(f.get("id"), "custom_fields[].id"): f.get("content") for f in custom}
            if custom
            else None
        ),
    )


def contact_json(contact: Contact) -> dict[str, Any]:
    """A contact shaped like Keap's REST v1 contact."""
    return {
        "id": contact.id,
        "email_addresses": [{"email": contact.email, "field": "EMAIL1"}],
        "given_name": contact.given_name,
        "family_name": contact.family_name,
        "phone_numbers": (
            [{"number": contact.phone, "field": "PHONE1"}] if contact.phone is not None else []
        ),
        "company": {"company_name": contact.company} if contact.company is not None else None,
        "opt_in_reason": contact.opt_in_reason,
        "custom_fields": [{"id": k, "content": v} for k, v in contact.custom_fields.items()],
    }


def _upsert(state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]) -> Response:
    payload = _json_object(body)
    option = payload.get("duplicate_option", "Email")
    if option not in ("Email", "EmailAndName"):
        raise BadRequest("duplicate_option must be Email or EmailAndName")
    match: DuplicateOption = option
    fields = _contact_fields(payload)
    with state.editing_crm() as crm:
        contact, created = crm.upsert_contact(fields, state.behaviour, match)
    return JSONResponse(contact_json(contact), status_code=201 if created else 200)


def _add_tags(state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]) -> Response:
    tag_ids = _json_object(body).get("tagIds")
    if not isinstance(tag_ids, list) or not tag_ids:
        raise BadRequest("tagIds must be a non-empty list")
    tags = [_int(tag, "tagIds[]") for tag in tag_ids]
    with state.editing_crm() as crm:
        crm.add_tags(int(route.params["contact_id"]), tags, state.behaviour)
    return JSONResponse({str(tag): "SUCCESS" for tag in tags})


def _remove_tags(
    state: FakeKeapState, route: RestRoute, _: bytes, query: dict[str, str]
) -> Response:
    if route.params.get("tag_id"):
        tags = [int(route.params["tag_id"])]
    else:
        try:
            tags = [int(t) for t in query.get("ids", "").split(",") if t.strip()]
        except ValueError as exc:
            raise BadRequest("ids must be comma-separated integers") from exc
        if not tags:
            raise BadRequest("ids is required")
    with state.editing_crm() as crm:
        crm.remove_tags(int(route.params["contact_id"]), tags, state.behaviour)
    return Response(status_code=204)


def _change_sequence(add: bool) -> RestHandler:
    def change(state: FakeKeapState, route: RestRoute, _: bytes, __: dict[str, str]) -> Response:
        params = route.params
        with state.editing_crm() as crm:
            crm.change_sequence(
                int(params["contact_id"]),
                int(params["campaign_id"]),
                int(params["sequence_id"]),
                state.behaviour,
                add=add,
            )
        return Response(status_code=204)

    return change


def _achieve_goal(
    state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]
) -> Response:
    contact_id = _int(_json_object(body).get("contact_id"), "contact_id")
    integration, call_name = route.params["integration"], route.params["call_name"]
    with state.editing_crm() as crm:
        achieved = crm.achieve_goal(
            integration, call_name, contact_id, state.behaviour, time.time()
        )
    return JSONResponse([goal_result(integration, call_name, achieved)])


def goal_result(integration: str, call_name: str, achieved: bool) -> dict[str, Any]:
    return {
        "success": achieved,
        "message": "Goal achieved" if achieved else f"No goal {integration}/{call_name}",
        "automation_id": 1 if achieved else None,
        "goal_id": 1 if achieved else None,
    }


def _profile(state: FakeKeapState, route: RestRoute, _: bytes, __: dict[str, str]) -> Response:
    return JSONResponse({"name": "Fake Keap", "email": "owner@fake-keap.test", "time_zone": "UTC"})


def _userinfo(state: FakeKeapState, route: RestRoute, _: bytes, __: dict[str, str]) -> Response:
    # GetUserInfoResponse in infusionsoft/keap-sdk sdks/v2/swagger.yml (v1 serves the same).
    return JSONResponse(
        {
            "email": "owner@fake-keap.test",
            "sub": "1",
            "id": "1",
            "keap_id": "owner@fake-keap.test",
            "given_name": "Fake",
            "family_name": "Owner",
        }
    )


_HANDLERS: dict[str, RestHandler] = {
    "contact.upsert": _upsert,
    "tags.add": _add_tags,
    "tags.remove": _remove_tags,
    "sequence.add": _change_sequence(add=True),
    "sequence.remove": _change_sequence(add=False),
    "goal.achieve": _achieve_goal,
    "auth.probe": _userinfo,
    "account.profile": _profile,
}
