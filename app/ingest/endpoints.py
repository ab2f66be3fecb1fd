"""``/hooks/{source}``: translate HTTP to the ingest service and its result back."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from app.api.problems import problem_for
from app.errors import PayloadTooLarge, RelayError
from app.ingest.service import IngestRequest, IngestResult, IngestService
from app.observability.metrics import Metrics

log = logging.getLogger("relay.ingest")
router = APIRouter()

_OUTCOMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "unknown_source",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported",
    503: "unavailable",
}


async def receive_webhook(source: str, request: Request) -> Response:
    started = time.perf_counter()
    service: IngestService = request.app.state.ingest
    metrics: Metrics = request.app.state.metrics
    label = source if source in service.config.sources else "unknown"
    client_ip = request.client.host if request.client else None
    try:
        src = service.source_for(source, request.method, request.headers, client_ip)
        if request.method == "HEAD":
            metrics.events_received.labels(label, "probe").inc()
            return Response(status_code=200)
        body = await _read_limited(request, request.app.state.settings.max_body_bytes)
        result = await service.receive(
            IngestRequest(
                source=source,
                method=request.method,
                headers=request.headers,
                query_string=request.url.query,
                body=body,
                client_ip=client_ip,
            ),
            source=src,
        )
    except RelayError as error:
        outcome = _OUTCOMES.get(error.status_code, "error")
        metrics.events_received.labels(label, outcome).inc()
        log.info(
            "webhook refused",
            extra={
                "source": label,
                "outcome": outcome,
                "status": error.status_code,
                "reason": error.detail,
            },
        )
        if request.method == "HEAD":
            return Response(status_code=error.status_code)
        return problem_for(error)
    response = _answer(result)
    elapsed = time.perf_counter() - started
    metrics.ingest_duration.observe(elapsed)
    for inserted, status in zip(result.inserted, result.statuses, strict=True):
        outcome = "accepted" if inserted.created else "duplicate"
        metrics.events_received.labels(label, outcome).inc()
        if inserted.created and status in ("ignored", "dead"):
            metrics.events_finished.labels(status).inc()
        log.info(
            "webhook received", extra={"source": label, "event_id": inserted.id, "outcome": outcome}
        )
    if result.ping:
        metrics.events_received.labels(label, "ping").inc()
    return response


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "A duplicate of a stored event, or a WooCommerce ping"},
    202: {"description": "Stored durably; delivery follows"},
    400: {"description": "Unparsable body"},
    401: {"description": "Not verified"},
    403: {"description": "Address not allowed"},
    404: {"description": "Unknown source"},
    405: {"description": "Method not allowed"},
    413: {"description": "Too large"},
    415: {"description": "Unsupported content type"},
    503: {"description": "Could not be stored"},
}
_PATH = "/hooks/{source}"
router.add_api_route(
    _PATH,
    receive_webhook,
    methods=["POST"],
    status_code=202,
    summary="Receive a webhook",
    responses=_RESPONSES,
    operation_id="receive_webhook",
)
router.add_api_route(
    _PATH,
    receive_webhook,
    methods=["GET"],
    status_code=202,
    summary="Receive a webhook as a query string (sources with methods: [GET])",
    responses=_RESPONSES,
    operation_id="receive_webhook_query",
)
# HEAD answers senders' probes; other methods answer 405 as problem+json.
router.add_api_route(
    _PATH, receive_webhook, methods=["HEAD", "PUT", "PATCH", "DELETE"], include_in_schema=False
)


def _answer(result: IngestResult) -> Response:
    if result.ping:
        return JSONResponse({"status": "ping"}, status_code=200)
    created = any(i.created for i in result.inserted)
    status = "accepted" if created else "duplicate"
    code = 202 if created else 200
    if result.split:
        return JSONResponse(
            {"event_ids": [i.id for i in result.inserted], "status": status}, status_code=code
        )
    return JSONResponse({"event_id": result.inserted[0].id, "status": status}, status_code=code)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (never buffered whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
