"""The failure answers Keap gives: throttles, outages, dropped connections."""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import HTMLResponse, JSONResponse, Response

from app.fake_keap.connections import ConnectionRegistry, DroppedConnection
from app.fake_keap.faults import RetiredXmlRpc
from app.fake_keap.limits import retry_after_header
from app.fake_keap.records import FailureStatus

THROTTLED_BODY = {"code": "429", "message": "Quota Exceeded", "status": "Request Throttled"}


def failure_response(
    status: FailureStatus, retry_after: float | None, registry: ConnectionRegistry | None
) -> Response:
    """A forced failure, outage or throttle; ``"drop"`` aborts the connection instead."""
    if status == "drop":
        return DroppedConnection(registry)
    if status == 429:
        response: Response = JSONResponse(THROTTLED_BODY, status_code=429)
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
