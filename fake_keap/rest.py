"""REST v1 handlers (and v2's companies, emails, bulk tags and sequences): translate a
request into a ``CrmData`` change and Keap's answer. Orders, payments and notes are in
rest_orders; the shared parsing in rest_common."""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import JSONResponse, Response

from fake_keap.crm_data import ContactFields, CrmError, DuplicateOption, _resolve_sequence
from fake_keap.records import Contact
from fake_keap.rest_common import (
    BadRequest,
    RestHandler,
    integer,
    json_object,
    message,
    optional_str,
    string_id,
)
from fake_keap.rest_orders import ORDER_HANDLERS
from fake_keap.routing import RestRoute
from fake_keap.state import FakeKeapState


def handle_rest(
    state: FakeKeapState, route: RestRoute, body: bytes, query: dict[str, str]
) -> Response:
    handler = _HANDLERS.get(route.operation)
    if handler is None:
        return message(404, "Resource not found", route)
    try:
        return handler(state, route, body, query)
    except BadRequest as exc:
        return message(400, str(exc), route)
    except CrmError as exc:
        return message(exc.http_status, str(exc), route)


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
    company_id = _company_reference(body.get("company"))
    custom = body.get("custom_fields")
    if custom is not None and (
        not isinstance(custom, list) or not all(isinstance(f, dict) for f in custom)
    ):
        raise BadRequest("custom_fields must be a list of objects")
    return ContactFields(
        email=email,
        given_name=optional_str(body, "given_name"),
        family_name=optional_str(body, "family_name"),
        phone=phones[0].get("number") if phones else None,
        company_id=company_id,
        opt_in_reason=optional_str(body, "opt_in_reason"),
        custom_fields=(
            {integer(f.get("id"), "custom_fields[].id"): f.get("content") for f in custom}
            if custom
            else None
        ),
    )


def _company_reference(company: object) -> int | None:
    """The upsert's ``company``: a reference by id only (a name alone is refused).

    Source: the audited notes (../shared/KEAP_API_NOTES.md, "company in the request is a
    reference by id only"); the v2 OpenAPI file's BasicCompany has the same ``id``.
    """
    if company is None:
        return None
    if not isinstance(company, dict):
        raise BadRequest("company must be an object")
    company_id = company.get("id")
    if company_id is None:
        raise BadRequest("company.id is required: a company is referenced by its id")
    if isinstance(company_id, str) and company_id.isdigit():
        company_id = int(company_id)
    return integer(company_id, "company.id")


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
        "company": (
            {"id": contact.company_id, "company_name": contact.company}
            if contact.company_id is not None
            else None
        ),
        "opt_in_reason": contact.opt_in_reason,
        "custom_fields": [{"id": k, "content": v} for k, v in contact.custom_fields.items()],
    }


def _upsert(state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]) -> Response:
    payload = json_object(body)
    option = payload.get("duplicate_option", "Email")
    if option not in ("Email", "EmailAndName"):
        raise BadRequest("duplicate_option must be Email or EmailAndName")
    match: DuplicateOption = option
    fields = _contact_fields(payload)
    with state.editing_crm() as crm:
        contact, created = crm.upsert_contact(fields, state.behaviour, match)
    return JSONResponse(contact_json(contact), status_code=201 if created else 200)


def _add_tags(state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]) -> Response:
    tag_ids = json_object(body).get("tagIds")
    if not isinstance(tag_ids, list) or not tag_ids:
        raise BadRequest("tagIds must be a non-empty list")
    tags = [integer(tag, "tagIds[]") for tag in tag_ids]
    with state.editing_crm() as crm:
        applied = crm.apply_tags(int(route.params["contact_id"]), tags, state.behaviour)
    # 200 with a status per tag, even when one failed. The v1 reference types the answer
    # as a list of Entry<long,string> (infusionsoft/infusionsoft-sdk-java,
    # docs/ContactApi.md), which Jackson writes as one-key objects; its statuses are
    # SUCCESS, DUPLICATE, CONTACT_NOT_FOUND, TAG_ID_NOT_FOUND and FAILURE
    # (KeapArchive/infusionsoft-sdk-nodejs, docs/Entrylongstring.md).
    statuses = {tag: "SUCCESS" if ok else "TAG_ID_NOT_FOUND" for tag, ok in applied.items()}
    return JSONResponse([{str(tag): status} for tag, status in statuses.items()])


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
    contact_id = integer(json_object(body).get("contact_id"), "contact_id")
    integration, call_name = route.params["integration"], route.params["call_name"]
    with state.editing_crm() as crm:
        achieved = crm.achieve_goal(
            integration, call_name, contact_id, state.behaviour, time.time()
        )
    return JSONResponse(goal_results(achieved))


def goal_results(achieved: bool) -> list[dict[str, Any]]:
    """v1's answer: one ``{campaign_id, goal_id, message, success}`` per campaign that has
    this goal (KEAP_API_NOTES, REST v1); no campaign listening: an empty list."""
    if not achieved:
        return []
    return [{"campaign_id": 1, "goal_id": 1, "message": "Goal achieved", "success": True}]


def _list_companies(
    state: FakeKeapState, route: RestRoute, body: bytes, query: dict[str, str]
) -> Response:
    """v2 ``GET /companies?filter=…`` (keap-sdk sdks/v2/swagger.yml, listCompanies): the
    filter is clauses joined by ``;``, all of which must hold. ``company_name==X`` is an
    exact match; ``name==X`` is "company name with support for a wildcard at the end",
    ``name==Prefix*`` matching case-insensitively as the spec's examples say. What Keap
    answers for a clause it cannot read is not published (the fake: 400)."""
    clauses = [clause.partition("==") for clause in query.get("filter", "").split(";")]
    for field, operator, value in clauses:
        wildcard_inside = field == "name" and "*" in value[:-1]
        if not operator or field not in ("company_name", "name") or wildcard_inside:
            raise BadRequest(f"Invalid filter: {field}{operator}{value}")
    with state.editing_crm() as crm:
        found = [
            (i, n)
            for i, n in crm.all_companies()
            if all(_company_matches(n, field, value) for field, _, value in clauses)
        ]
    return JSONResponse(
        {"companies": [{"id": str(i), "company_name": n} for i, n in found], "next_page_token": ""}
    )


def _company_matches(name: str, field: str, value: str) -> bool:
    if field == "company_name":
        return name == value
    if value.endswith("*"):
        return name.casefold().startswith(value[:-1].casefold())
    return name.casefold() == value.casefold()


def _create_company(
    state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]
) -> Response:
    """v2 ``POST /companies`` answers 201 with the Company, ``id`` a string."""
    name = optional_str(json_object(body), "company_name")
    if not name:
        raise BadRequest("company_name is required")
    with state.editing_crm() as crm:
        company_id = crm.create_company(name)
    return JSONResponse({"id": str(company_id), "company_name": name}, status_code=201)


def _send_email_template(
    state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]
) -> Response:
    """v2 ``POST /emails/templates:send``: ``template_id``, ``contact_ids`` (strings) and
    ``user_id`` are all required (EmailSendTemplateRequest); 202 Accepted, no body."""
    payload = json_object(body)
    contact_ids = payload.get("contact_ids")
    if not isinstance(contact_ids, list) or not contact_ids:
        raise BadRequest("contact_ids is required")
    template_id = string_id(payload.get("template_id"), "template_id")
    user_id = string_id(payload.get("user_id"), "user_id")
    contacts = [string_id(c, "contact_ids[]") for c in contact_ids]
    with state.editing_crm() as crm:
        crm.send_email(contacts, template_id, state.behaviour, time.time(), user_id)
    return Response(status_code=202)


def _contact_ids(body: bytes) -> list[int]:
    """v2's ``{"contact_ids": ["…"]}`` (ApplyRemoveTagRequest, AddContactsToSequenceRequest)."""
    contact_ids = json_object(body).get("contact_ids")
    if not isinstance(contact_ids, list) or not contact_ids:
        raise BadRequest("contact_ids is required")
    return [string_id(c, "contact_ids[]") for c in contact_ids]


def _tag_many(apply: bool) -> RestHandler:
    """v2 ``POST /tags/{tag_id}/contacts:applyTags`` answers 200 ``{"results": {contact id:
    status}}`` (ApplyTagsResponse, statuses not enumerated; the fake uses v1's SUCCESS and
    CONTACT_NOT_FOUND); ``:removeTags`` answers 204 with no body (infusionsoft/keap-sdk,
    sdks/v2/swagger.yml). An unknown tag is a 404 for the whole call (unverified)."""

    def change(state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]) -> Response:
        contacts = _contact_ids(body)
        tag_id = int(route.params["tag_id"])
        known = state.behaviour.known_tag_ids
        if known is not None and tag_id not in known:
            return message(404, f"Tag {tag_id} not found", route)
        results: dict[str, str] = {}
        with state.editing_crm() as crm:
            for contact_id in contacts:
                if contact_id not in crm.contacts:
                    results[str(contact_id)] = "CONTACT_NOT_FOUND"
                elif apply:
                    crm.apply_tags(contact_id, [tag_id], state.behaviour)
                    results[str(contact_id)] = "SUCCESS"
                else:
                    crm.remove_tags(contact_id, [tag_id], state.behaviour)
        return JSONResponse({"results": results}) if apply else Response(status_code=204)

    return change


def _sequence_many(add: bool) -> RestHandler:
    """v2 ``:addContacts`` / ``:removeContacts`` answer 200 with a result per contact under
    ``add_to_sequence_results`` (SUCCESS, ALREADY_IN_SEQUENCE, CONTACT_DOES_NOT_EXIST,
    FAILED) or ``remove_from_sequence_results`` (SUCCESS, CONTACT_DOES_NOT_EXIST, FAILED)
    (infusionsoft/keap-sdk, sdks/v2/swagger.yml). An unknown sequence fails the whole call
    as in v1 (404 ``Error loading follow-up sequence``)."""

    def change(state: FakeKeapState, route: RestRoute, body: bytes, _: dict[str, str]) -> Response:
        contacts = _contact_ids(body)
        campaign_id = int(route.params["campaign_id"])
        sequence_id = int(route.params["sequence_id"])
        results: dict[str, str] = {}
        _resolve_sequence(campaign_id, sequence_id, state.behaviour.known_sequences)
        with state.editing_crm() as crm:
            for contact_id in contacts:
                if contact_id not in crm.contacts:
                    results[str(contact_id)] = "CONTACT_DOES_NOT_EXIST"
                    continue
                already = (campaign_id, sequence_id) in crm.sequences.get(contact_id, set())
                crm.change_sequence(contact_id, campaign_id, sequence_id, state.behaviour, add=add)
                results[str(contact_id)] = "ALREADY_IN_SEQUENCE" if add and already else "SUCCESS"
        key = "add_to_sequence_results" if add else "remove_from_sequence_results"
        return JSONResponse({key: results})

    return change


def _user_info(state: FakeKeapState, route: RestRoute, _: bytes, __: dict[str, str]) -> Response:
    """v2 ``GET /oauth/connect/userinfo`` (GetUserInfoResponse). What Keap answers for a
    service account key, which acts for no user, is not published: the fake answers 403
    when ``credential_user_id`` is None."""
    user_id = state.behaviour.credential_user_id
    if user_id is None:
        return message(403, "This credential is not associated with a user", route)
    return JSONResponse(
        {"sub": str(user_id), "id": str(100000 + user_id), "email": "owner@fake-keap.test"}
    )


def _profile(state: FakeKeapState, route: RestRoute, _: bytes, __: dict[str, str]) -> Response:
    return JSONResponse({"name": "Fake Keap", "email": "owner@fake-keap.test", "time_zone": "UTC"})


_HANDLERS: dict[str, RestHandler] = {
    "contact.upsert": _upsert,
    "tags.add": _add_tags,
    "tags.remove": _remove_tags,
    "sequence.add": _change_sequence(add=True),
    "sequence.remove": _change_sequence(add=False),
    "goal.achieve": _achieve_goal,
    "auth.probe": _user_info,  # v1 userinfo: the relay's credential probe
    "account.profile": _profile,
    "company.find": _list_companies,
    "company.create": _create_company,
    "email_template.send": _send_email_template,
    "user.discover": _user_info,
    "tags.apply_many": _tag_many(apply=True),
    "tags.remove_many": _tag_many(apply=False),
    "sequence.add_many": _sequence_many(add=True),
    "sequence.remove_many": _sequence_many(add=False),
    **ORDER_HANDLERS,
}
