"""OpenTelemetry traces, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Off unless the ``otel`` extra is installed and the standard variable is set (in the
environment or in ``.env``): whether it is on is decided once, at start, and the hot paths
test one module attribute (``TRACER is not None``) — with tracing off, no span, no-op or
other, is made per request.

A trace per event: the ingest span (``POST /hooks/{source}``, a child of the sender's W3C
``traceparent`` when it sends one) with events ``parse``, ``verify``, ``plan`` and
``store``; its context is stored with the event (in its stored headers, as
``LINK_HEADER``), and each delivery attempt is a ``deliver`` span linked to it, with a
child span per Keap call. Attributes never hold a secret or a full email: free text goes
through the log scrubber (``app.observability.logging.scrub``), emails through
``mask_email``. docs/operations.md ("Tracing") lists every span and attribute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from app.observability.logging import current_log_context, mask_email, register_secrets, scrub

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from app.domain.events import EventRecord
    from app.keap.models import KeapCall

log = logging.getLogger("relay.tracing")

# Where an event keeps its ingest span's context (a W3C traceparent), among its stored
# headers: the delivery spans link to it.
LINK_HEADER = "x-relay-ingest-traceparent"
SERVICE_NAME = "infusionsoft-relay"
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_PHASES = ("parse", "verify", "plan", "store")

# Set by start_tracing when traces are exported; None: tracing is off.
TRACER: Tracer | None = None
_provider: TracerProvider | None = None


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the standard variables ask for traces (an endpoint, and not disabled)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def adopt_dotenv(env_file: Path) -> None:
    """Put the ``OTEL_*`` lines of ``.env`` into the environment, where the SDK reads them
    (variables already in the environment win, as they do for ``RELAY_`` settings)."""
    if not env_file.is_file():
        return
    from dotenv import dotenv_values

    for name, value in dotenv_values(env_file).items():
        if name.startswith("OTEL_") and value and name not in os.environ:
            os.environ[name] = value


def start_tracing(env_file: Path | None = Path(".env")) -> bool:
    """Export traces if asked to; True when this call switched tracing on (the caller
    then calls ``stop_tracing``). Without the variable nothing is imported or made."""
    global TRACER, _provider
    if TRACER is not None:
        return False  # another app in this process started it
    if env_file is not None:
        adopt_dotenv(env_file)
    if not tracing_wanted(os.environ):
        return False
    # The backend's API key travels in these headers: never let a log line show it.
    register_secrets(_header_values(os.environ))
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed: no "
            "traces are exported",
            extra={"hint": "pip install 'infusionsoft-relay[otel]'"},
        )
        return False
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol.strip() != "http/protobuf":
        log.warning(
            "the relay exports traces over OTLP/HTTP (http/protobuf) only",
            extra={"OTEL_EXPORTER_OTLP_PROTOCOL": protocol},
        )
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over this default.
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _provider = provider
    TRACER = provider.get_tracer("app.relay")
    log.info("exporting traces over OTLP/HTTP")
    return True


def _header_values(environ: Mapping[str, str]) -> list[str]:
    """The values of OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, ``name=value`` pairs by commas."""
    values = []
    for variable in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        for pair in environ.get(variable, "").split(","):
            _, _, value = pair.partition("=")
            values.append(unquote(value.strip()))
    return values


def stop_tracing() -> None:
    """Send the spans still queued and switch tracing off."""
    global TRACER, _provider
    provider, _provider, TRACER = _provider, None, None
    if provider is not None:
        provider.shutdown()


# ingest ------------------------------------------------------------------------------


class IngestTrace:
    """The ingest span of one request. The service marks the end of each phase (a clock
    read); the phases become events on the span when the request ends."""

    __slots__ = ("_marks", "span", "traceparent")

    def __init__(self, tracer: Tracer, method: str, path: str, headers: Mapping[str, str]):
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(carrier=headers)
        self.span: Span = tracer.start_span(
            f"{method} /hooks/{{source}}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scrub(path),
                "http.route": "/hooks/{source}",
            },
        )
        self._marks: list[tuple[str, int]] = [("start", time.time_ns())]
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, trace.set_span_in_context(self.span))
        self.traceparent = carrier["traceparent"]

    def mark(self, phase: str) -> None:
        """``phase`` (parse, verify, plan, store) ended now."""
        self._marks.append((phase, time.time_ns()))

    def answered(
        self,
        status: int,
        outcome: str,
        source: str,
        event_ids: list[str] | None = None,
        reason: str | None = None,
    ) -> None:
        from opentelemetry.trace import StatusCode

        span = self.span
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("relay.source", source)
        span.set_attribute("relay.outcome", outcome)
        if event_ids:
            span.set_attribute("relay.event_ids", event_ids)
        if reason:
            span.set_attribute("relay.reason", scrub(reason))
        if status >= 500:
            span.set_status(StatusCode.ERROR, scrub(reason or outcome))

    def failed(self, error: BaseException) -> None:
        from opentelemetry.trace import StatusCode

        self.span.set_attribute("http.response.status_code", 500)
        self.span.set_attribute("error.type", type(error).__name__)
        self.span.set_status(StatusCode.ERROR, "unexpected error; see the logs")

    def end(self) -> None:
        """End the span, each phase an event on it at the phase's end with its duration
        (events, not child spans: one span per request for the backend to store)."""
        span = self.span
        for (_, begun), (phase, ended) in zip(self._marks, self._marks[1:], strict=False):
            span.add_event(phase, {"relay.duration_ms": (ended - begun) / 1e6}, ended)
        span.end()


def ingest_trace(method: str, path: str, raw_headers: list[tuple[bytes, bytes]]) -> IngestTrace:
    """Start the ingest span of a request (tracing on: ``TRACER`` is set)."""
    assert TRACER is not None
    headers = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in raw_headers
        if k in (b"traceparent", b"tracestate")
    }
    return IngestTrace(TRACER, method, path, headers)


# delivery ----------------------------------------------------------------------------


@contextlib.contextmanager
def delivery_span(event: EventRecord) -> Iterator[None]:
    """One delivery attempt of ``event``, linked to its ingest span; the Keap calls made
    inside the block are its children. Without tracing, nothing."""
    tracer = TRACER
    if tracer is None:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    links = []
    stored = event.headers.get(LINK_HEADER)
    if stored:
        ingest = trace.get_current_span(
            TraceContextTextMapPropagator().extract({"traceparent": stored})
        ).get_span_context()
        if ingest.is_valid:
            links.append(trace.Link(ingest))
    attributes: dict[str, Any] = {
        "relay.event_id": event.id,
        "relay.source": event.source,
        "relay.attempt": event.attempts + 1,
        "relay.routes": list(event.routes),
    }
    if event.contact_email:
        attributes["relay.contact"] = mask_email(event.contact_email) or "***"
    # A root of its own: the ingest request ended long ago; the link leads back to it.
    with tracer.start_as_current_span(
        "deliver",
        context=trace.set_span_in_context(trace.INVALID_SPAN),
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes=attributes,
    ):
        yield


def delivery_outcome(outcome: str, reason: str | None = None) -> None:
    """Note how the current delivery attempt ended (delivered, dead, retry, paused...)."""
    if TRACER is None:
        return
    from opentelemetry import trace
    from opentelemetry.trace import StatusCode

    span = trace.get_current_span()
    span.set_attribute("relay.outcome", outcome)
    if reason:
        span.set_attribute("relay.reason", scrub(reason))
    if outcome in ("dead", "retry", "paused"):
        span.set_status(StatusCode.ERROR, scrub(reason or outcome))


def keap_call_span(call: KeapCall) -> None:
    """A finished Keap call, as a child of the current span (the delivery attempt)."""
    tracer = TRACER
    if tracer is None:
        return
    from opentelemetry.trace import SpanKind, StatusCode

    ended = time.time_ns()
    attributes: dict[str, Any] = {
        "keap.operation": call.operation,
        "http.request.method": call.method,
        "url.path": scrub(call.path),
    }
    if call.status_code is not None:
        attributes["http.response.status_code"] = call.status_code
    for name, value in call.throttle.items():
        attributes[f"keap.header.{name.lower()}"] = scrub(value)
    context = current_log_context()
    for key in ("event_id", "route", "action"):
        if (bound := context.get(key)) is not None:
            attributes[f"relay.{key}"] = str(bound)
    span = tracer.start_span(
        f"keap {call.operation}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=ended - int(call.duration * 1e9),
    )
    if call.error is not None:
        span.set_attribute("keap.error", scrub(call.error))
        span.set_status(StatusCode.ERROR, scrub(call.error))
    span.end(ended)
