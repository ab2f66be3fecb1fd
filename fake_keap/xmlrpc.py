"""The legacy XML-RPC endpoint: parse safely, dispatch by method, answer or fault."""

from __future__ import annotations

import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from defusedxml.xmlrpc import DefusedExpatParser
from starlette.responses import Response

from fake_keap.crm_data import ContactFields, CrmData, CrmError, InvalidParameter
from fake_keap.records import XMLRPC_OPERATIONS
from fake_keap.rest import goal_results
from fake_keap.state import FakeKeapState

INVALID_KEY = xmlrpc.client.Fault(2, "[InvalidKey]Invalid Key")
UNPARSABLE = "xmlrpc.invalid"
XmlRpcHandler = Callable[[CrmData, FakeKeapState, tuple[Any, ...]], Any]
UNKNOWN_METHOD = "xmlrpc.unknown"

# XML-RPC struct names of addWithDupCheck, and where they land on a contact.
_CONTACT_FIELDS = {
    "FirstName": "given_name",
    "LastName": "family_name",
    "Phone1": "phone",
    "Company": "company",
}
_DUP_CHECKS = ("Email", "EmailAndName", "EmailAndNameAndCompany")


@dataclass(frozen=True)
class XmlRpcCall:
    method: str
    params: tuple[Any, ...]

    @property
    def operation(self) -> str:
        return XMLRPC_OPERATIONS.get(self.method, UNKNOWN_METHOD)


def parse_call(body: bytes) -> XmlRpcCall | None:
    """Parse a methodCall with entity expansion forbidden; None when it is not valid XML-RPC."""
    unmarshaller = xmlrpc.client.Unmarshaller()
    parser = DefusedExpatParser(unmarshaller)
    try:
        parser.feed(body)
        parser.close()
        params = unmarshaller.close()
    except Exception:  # any malformed or hostile body is simply "not XML-RPC"
        return None
    method = unmarshaller.getmethodname()
    return XmlRpcCall(method, params) if method else None


def xml_response(result: Any) -> Response:
    return Response(xmlrpc.client.dumps((result,), methodresponse=True), media_type="text/xml")


def fault_response(fault: xmlrpc.client.Fault) -> Response:
    return Response(xmlrpc.client.dumps(fault, methodresponse=True), media_type="text/xml")


def handle_xmlrpc(state: FakeKeapState, call: XmlRpcCall | None) -> Response:
    if call is None:
        fault = xmlrpc.client.Fault(0, "Failed to parse XML-RPC request: Premature end of file.")
        return fault_response(fault)
    handler = _HANDLERS.get(call.method)
    if handler is None:
        return fault_response(xmlrpc.client.Fault(0, f"No such handler: {call.method}"))
    try:
        with state.editing_crm() as crm:
            return xml_response(_call_handler(handler, crm, state, call))
    except CrmError as exc:
        return fault_response(xmlrpc.client.Fault(exc.fault_code, exc.fault_string))


def _call_handler(
    handler: XmlRpcHandler, crm: CrmData, state: FakeKeapState, call: XmlRpcCall
) -> Any:
    try:
        return handler(crm, state, call.params[1:])
    except (IndexError, TypeError, ValueError) as exc:
        raise InvalidParameter(f"Bad parameters for {call.method}: {exc}") from exc


def _id(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an int")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise TypeError(f"expected an int, got {value!r}")


def _add_with_dup_check(crm: CrmData, state: FakeKeapState, params: tuple[Any, ...]) -> int:
    data, dup_check = params[0], params[1]
    if not isinstance(data, dict) or not isinstance(data.get("Email"), str):
        raise InvalidParameter("Email is required")
    if dup_check not in _DUP_CHECKS:
        raise InvalidParameter(f"Invalid duplicate check type: {dup_check}")
    fields = ContactFields(
        email=data["Email"], **{name: data.get(key) for key, name in _CONTACT_FIELDS.items()}
    )
    contact, _ = crm.upsert_contact(fields, state.behaviour, dup_check)
    return contact.id


def _find_by_email(crm: CrmData, state: FakeKeapState, params: tuple[Any, ...]) -> list[Any]:
    email, wanted = params[0], params[1]
    found = []
    for contact in crm.find_by_email(str(email)):
        values: dict[str, Any] = {"Id": contact.id, "Email": contact.email}
        values.update({key: getattr(contact, name) for key, name in _CONTACT_FIELDS.items()})
        found.append({k: v for k, v in values.items() if k in wanted and v is not None})
    return found


def _tag(add: bool) -> XmlRpcHandler:
    def change(crm: CrmData, state: FakeKeapState, params: tuple[Any, ...]) -> bool:
        contact_id, tag_id = _id(params[0]), _id(params[1])
        if add:
            crm.add_tags(contact_id, [tag_id], state.behaviour)
        else:
            crm.remove_tags(contact_id, [tag_id], state.behaviour)
        return True

    return change


def _campaign(add: bool) -> XmlRpcHandler:
    def change(crm: CrmData, state: FakeKeapState, params: tuple[Any, ...]) -> bool:
        crm.change_sequence(_id(params[0]), None, _id(params[1]), state.behaviour, add=add)
        return True

    return change


def _run_action_sequence(
    crm: CrmData, state: FakeKeapState, params: tuple[Any, ...]
) -> list[dict[str, Any]]:
    contact_id, action_set_id = _id(params[0]), _id(params[1])
    ran = crm.run_action_set(contact_id, action_set_id, state.behaviour, time.time())
    # The result key is "IsError" (capitalised like Action and Message, as the XML-RPC
    # reference's runActionSequence sample writes it; some clients read "isError").
    results = [{"Action": "Apply tag", "Message": "Success", "IsError": False}]
    if not ran:
        results.append({"Action": "Send email", "Message": "Template not found", "IsError": True})
    return results


def _send_email(crm: CrmData, state: FakeKeapState, params: tuple[Any, ...]) -> bool:
    contacts, template_id = params[0], _id(params[1])
    if not isinstance(contacts, list) or not contacts:
        raise InvalidParameter("contactList must be a non-empty array")
    crm.send_email([_id(c) for c in contacts], template_id, state.behaviour, time.time())
    return True


def _achieve_goal(
    crm: CrmData, state: FakeKeapState, params: tuple[Any, ...]
) -> list[dict[str, Any]]:
    integration, call_name, contact_id = str(params[0]), str(params[1]), _id(params[2])
    achieved = crm.achieve_goal(integration, call_name, contact_id, state.behaviour, time.time())
    return goal_results(achieved)


_HANDLERS: dict[str, XmlRpcHandler] = {
    "ContactService.addWithDupCheck": _add_with_dup_check,
    "ContactService.findByEmail": _find_by_email,
    "ContactService.addToGroup": _tag(add=True),
    "ContactService.removeFromGroup": _tag(add=False),
    "ContactService.addToCampaign": _campaign(add=True),
    "ContactService.removeFromCampaign": _campaign(add=False),
    "ContactService.runActionSequence": _run_action_sequence,
    "APIEmailService.sendEmail": _send_email,
    "FunnelService.achieveGoal": _achieve_goal,
}
