"""The failure answers Keap gives: throttles, outages, dropped connections."""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import JSONResponse, Response

from app.fake_keap.connections import ConnectionRegistry, DroppedConnection
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


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def response_status(response: Response) -> int:
    """The status the request log records: 0 for a dropped connection."""
    return 0 if isinstance(response, DroppedConnection) else response.status_code
