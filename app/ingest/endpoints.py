"""``/hooks/{source}``: the ingest hot path, answered in front of FastAPI.

Webhooks are the one path that must answer fast under load (senders wait as little as a
second), so ``app.api.hook_dispatch.HookDispatcher`` hands them here instead of to
FastAPI (its middleware, routing, dependencies and exception handlers): this module
reads the request straight from the ASGI scope, hands it to the ingest service and
writes the answer. Every other path goes to FastAPI. ``app.ingest.openapi`` adds this
path to the OpenAPI document.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time

from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from app.api.deps import ingest_of, metrics_of, settings_of
from app.api.problems import PROBLEM_JSON, UNEXPECTED_DETAIL, error_headers, problem_body
from app.api.requests import read_limited
from app.errors import RelayError
from app.ingest.service import IngestRequest, IngestResult
from app.observability import tracing
from app.observability.logging import log_line
from app.observability.metrics import Metrics
from app.observability.tracing import IngestTrace

log = logging.getLogger("relay.ingest")

PREFIX = "/hooks/"
_OUTCOMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "unknown_source",
    405: "method_not_allowed",
    408: "incomplete",
    413: "too_large",
    415: "unsupported",
    503: "unavailable",
}
_JSON_HEADERS = [(b"content-type", b"application/json")]


def is_hook_path(scope: Scope) -> bool:
    if scope["type"] != "http":
        return False
    path: str = scope["path"]
    return path.startswith(PREFIX) and "/" not in path[len(PREFIX) :]


async def receive_webhook(state: State, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one webhook request; an unexpected failure is logged and answered 500, as
    FastAPI's handlers would for any other path. With tracing off (decided at start),
    ``trace`` is None and no span is made."""
    trace = (
        tracing.ingest_trace(scope["method"], scope["path"], scope["headers"])
        if tracing.TRACER is not None
        else None
    )
    try:
        await _receive(state, scope, receive, send, trace)
    except Exception as exc:
        if trace is not None:
            trace.failed(exc)
        log.exception("unhandled error while receiving a webhook")
        body = problem_body(RelayError(UNEXPECTED_DETAIL))
        with contextlib.suppress(Exception):  # the answer may have started already
            await _respond(send, 500, body, [(b"content-type", PROBLEM_JSON.encode())])
    finally:
        if trace is not None:
            trace.end()


async def _receive(
    state: State, scope: Scope, receive: Receive, send: Send, trace: IngestTrace | None
) -> None:
    started = time.perf_counter()
    service = ingest_of(state)
    metrics = metrics_of(state)
    source = scope["path"][len(PREFIX) :]
    method: str = scope["method"]
    label = source if source in service.config.sources else "unknown"
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    client = scope.get("client")
    client_ip = client[0] if client else None
    try:
        src = service.source_for(source, method, headers, client_ip)
        if method == "HEAD":
            metrics.received(label, "probe")
            await _respond(send, 200, b"", [])
            if trace is not None:
                trace.answered(200, "probe", label)
            return
        limit = settings_of(state).max_body_bytes
        body = await read_limited(receive, headers.get("content-length"), limit)
        result = await service.receive(
            IngestRequest(
                source=source,
                method=method,
                headers=headers,
                query_string=scope["query_string"].decode("latin-1"),
                body=body,
                client_ip=client_ip,
            ),
            source=src,
            trace=trace,
        )
    except RelayError as error:
        outcome = _OUTCOMES.get(error.status_code, "error")
        metrics.received(label, outcome)
        if trace is not None:
            trace.answered(error.status_code, outcome, label, reason=error.detail)
        log.info(
            "webhook refused",
            extra={
                "source": label,
                "outcome": outcome,
                "status": error.status_code,
                "reason": error.detail,
            },
        )
        extra = [(k.lower().encode(), v.encode()) for k, v in error_headers(error).items()]
        if method == "HEAD":
            await _respond(send, error.status_code, b"", extra)
        else:
            await _respond(
                send,
                error.status_code,
                problem_body(error),
                [(b"content-type", PROBLEM_JSON.encode()), *extra],
            )
        return
    status, payload = _answer(result)
    await _respond(send, status, payload, _JSON_HEADERS)
    if trace is not None:
        trace.answered(status, _outcome(result), label, [i.id for i in result.inserted])
    metrics.ingest_duration.observe(time.perf_counter() - started)
    _count_and_log(metrics, label, result)


def _count_and_log(metrics: Metrics, label: str, result: IngestResult) -> None:
    if result.ping:
        metrics.received(label, "ping")
        return
    for inserted, status, routes, reason in zip(
        result.inserted, result.statuses, result.routes, result.reasons, strict=True
    ):
        outcome = "accepted" if inserted.created else "duplicate"
        metrics.received(label, outcome)
        fields: dict[str, object] = {
            "source": label,
            "event_id": inserted.id,
            "outcome": outcome,
            "status": status,
            "routes": routes,
        }
        if inserted.created and status in ("ignored", "dead"):
            metrics.events_finished.labels(status).inc()
            fields["reason"] = reason  # why no route took it (or why it cannot be delivered)
        log_line(log, "webhook received", fields)


def _outcome(result: IngestResult) -> str:
    if result.ping:
        return "ping"
    return "accepted" if any(i.created for i in result.inserted) else "duplicate"


def _answer(result: IngestResult) -> tuple[int, bytes]:
    if result.ping:
        return 200, b'{"status":"ping"}'
    created = any(i.created for i in result.inserted)
    code, status = (202, "accepted") if created else (200, "duplicate")
    if result.split:
        ids = [i.id for i in result.inserted]
        return code, json.dumps(
            {"event_ids": ids, "status": status}, separators=(",", ":")
        ).encode()
    # Spelled out, not serialised: ids are ASCII letters and digits.
    return code, b'{"event_id":"%s","status":"%s"}' % (
        result.inserted[0].id.encode(),
        status.encode(),
    )


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
