"""Every /crm request passes here: latency, admission, the handler, throttle headers, the log."""

from __future__ import annotations

import asyncio
import time
import xmlrpc.client

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fake_keap.admission import (
    Accepted,
    Admission,
    CallInfo,
    PresentedCredential,
    Refused,
    Retired,
    Unauthenticated,
)
from fake_keap.answers import failure_response, response_status, retired_xmlrpc_response
from fake_keap.connections import ConnectionRegistry, DroppedConnection
from fake_keap.permissions import forbidden_answer
from fake_keap.rest import handle_rest
from fake_keap.routing import XMLRPC_PATH, RestRoute, match_rest_route
from fake_keap.state import FakeKeapState
from fake_keap.xmlrpc import (
    INVALID_KEY,
    UNPARSABLE,
    XmlRpcCall,
    fault_response,
    handle_xmlrpc,
    parse_call,
)

# Keap's gateway (Apigee) refusing a bearer token (KEAP_API_NOTES, "Auth"; the fault
# envelope is Apigee's documented error format).
INVALID_ACCESS_TOKEN = {
    "fault": {
        "faultstring": "Invalid Access Token",
        "detail": {"errorcode": "keymanagement.service.invalid_access_token"},
    }
}


def presented_credential(headers: Headers) -> PresentedCredential:
    """The credential a /crm request carries: only headers count, for XML-RPC too.

    A PAT/SAK goes in ``X-Keap-API-Key`` (https://developer.infusionsoft.com/pat-and-sak/;
    Keap staff, https://integration.keap.com/t/api-authentication/91017), an OAuth token
    as a bearer; XML-RPC's key parameter is then a placeholder, never read (the legacy
    encrypted keys it used to carry were revoked in 2025).
    """
    if key := headers.get("x-keap-api-key"):
        return PresentedCredential("key", key)
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return PresentedCredential("bearer", token.strip())
    return PresentedCredential("none")


async def crm_endpoint(request: Request) -> Response:
    arrived_at = time.time()
    state: FakeKeapState = request.app.state.fake
    registry: ConnectionRegistry | None = request.app.state.connections
    path = request.path_params["path"].strip("/")
    body = await request.body()
    is_xmlrpc = path == XMLRPC_PATH and request.method == "POST"
    call = parse_call(body) if is_xmlrpc else None
    route = None if is_xmlrpc else match_rest_route(request.method, path)
    operation = route.operation if route else (call.operation if call else UNPARSABLE)
    credential = presented_credential(request.headers)
    with state.serving(operation):
        latency_ms = state.behaviour.latency_ms
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)

        xmlrpc_method = (call.method if call else "") if is_xmlrpc else None
        admission = state.admit(CallInfo(operation, credential, xmlrpc_method))
        response = _answer(state, admission, route, call, body, request, registry)
        if not isinstance(response, DroppedConnection):
            response.headers.update(state.throttle_headers(admission.credential_id))
    state.record_request(
        arrived_at,
        operation,
        credential.kind,
        response_status(response),
        request.method,
        request.url.path,
    )
    return response


def _answer(
    state: FakeKeapState,
    admission: Admission,
    route: RestRoute | None,
    call: XmlRpcCall | None,
    body: bytes,
    request: Request,
    registry: ConnectionRegistry | None,
) -> Response:
    if isinstance(admission, Refused):
        return failure_response(admission.status, admission.retry_after, registry)
    if isinstance(admission, Retired):
        return retired_xmlrpc_response(admission.retired, request.url.path)
    if isinstance(admission, Unauthenticated):
        if route is None:
            return fault_response(INVALID_KEY)
        if admission.kind == "bearer":
            return JSONResponse(INVALID_ACCESS_TOKEN, status_code=401)
        return JSONResponse({"message": "Invalid API key"}, status_code=401)
    return _handle_accepted(state, admission, route, call, body, request, registry)


def _handle_accepted(
    state: FakeKeapState,
    admission: Accepted,
    route: RestRoute | None,
    call: XmlRpcCall | None,
    body: bytes,
    request: Request,
    registry: ConnectionRegistry | None,
) -> Response:
    if admission.xmlrpc_fault is not None:
        fault = admission.xmlrpc_fault
        return fault_response(xmlrpc.client.Fault(fault.code, fault.string))
    if route is not None:
        forbidden = forbidden_answer(state, route, body)
        if forbidden is not None:
            return forbidden
        response = handle_rest(state, route, body, dict(request.query_params))
    else:
        response = handle_xmlrpc(state, call)
    failure = admission.fail_after
    if failure is not None:
        # The call took effect; only its answer is lost.
        return failure_response(failure.status, failure.retry_after, registry)
    return response
