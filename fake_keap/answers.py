"""The failure answers Keap gives: throttles, outages, dropped connections."""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import HTMLResponse, JSONResponse, Response

from fake_keap.connections import ConnectionRegistry, DroppedConnection
from fake_keap.faults import RetiredXmlRpc
from fake_keap.limits import retry_after_header
from fake_keap.records import FailureStatus

THROTTLED_BODY = {"code": "429", "message": "Quota Exceeded", "status": "Request Throttled"}
# Keap's gateway is Apigee (KEAP_API_NOTES.md); these are its documented fault bodies for a
# target that cut its answer (502), could not be handed the request (503) and did not
# answer in time (504): docs.apigee.com/api-platform/troubleshoot/runtime/502-bad-gateway,
# …/503-service-unavailable and …/504-gateway-timeout.
GATEWAY_FAULTS = {
    502: ("Unexpected EOF at target", "messaging.adaptors.http.UnexpectedEOFAtTarget"),
    503: (
        "The Service is temporarily unavailable",
        "messaging.adaptors.http.flow.ServiceUnavailable",
    ),
    504: ("Gateway Timeout", "messaging.adaptors.http.flow.GatewayTimeout"),
}


def failure_response(
    status: FailureStatus, retry_after: float | None, registry: ConnectionRegistry | None
) -> Response:
    """A forced failure, outage or throttle; ``"drop"`` aborts the connection instead."""
    if status == "drop":
        return DroppedConnection(registry)
    if status == 429:
        response: Response = JSONResponse(THROTTLED_BODY, status_code=429)
    elif status in GATEWAY_FAULTS:
        text, code = GATEWAY_FAULTS[status]
        fault = {"fault": {"faultstring": text, "detail": {"errorcode": code}}}
        response = JSONResponse(fault, status_code=status)
    else:
        response = JSONResponse({"message": _reason(status)}, status_code=status)
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after_header(retry_after)
    return response


def retired_xmlrpc_response(retired: RetiredXmlRpc, path: str) -> Response:
    """What a retired /xmlrpc/v1 plausibly answers (Keap has published nothing): Keap's
    gateway is Apigee, whose answer for a path no proxy serves any more is a 404
    ``{"fault": {"faultstring": "Unable to identify proxy for host: … and url: …",
    "detail": {"errorcode": "messaging.adaptors.http.flow.ApplicationNotFound"}}}``
    (https://docs.apigee.com/api-platform/troubleshoot/runtime/404-unable-identify-proxy-host);
    or a plain HTML error page, as a web server or load balancer in front gives."""
    if retired.format == "html":
        reason = _reason(retired.status)
        page = (
            f"<html><head><title>{retired.status} {reason}</title></head>"
            f"<body><h1>{reason}</h1><p>The requested URL {path} is no longer available."
            "</p></body></html>"
        )
        return HTMLResponse(page, status_code=retired.status)
    fault = {
        "faultstring": f"Unable to identify proxy for host: default and url: {path}",
        "detail": {"errorcode": "messaging.adaptors.http.flow.ApplicationNotFound"},
    }
    return JSONResponse({"fault": fault}, status_code=retired.status)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def response_status(response: Response) -> int:
    """The status the request log records: 0 for a dropped connection."""
    return 0 if isinstance(response, DroppedConnection) else response.status_code
