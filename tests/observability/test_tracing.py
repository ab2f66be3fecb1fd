"""OpenTelemetry traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, an event's ingest and each
delivery attempt reach an OTLP/HTTP receiver (a real local server decoding the protobuf),
linked, with the documented attributes and nothing secret; without it, nothing is made."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from app.config.models import RelayConfig
from app.observability import tracing
from app.observability.logging import scrub
from fake_keap.server import FakeKeapServer
from tests.conftest import make_config
from tests.delivery.conftest import API_KEY, DELIVERY_YAML, running_relay

SENDER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER_SPAN = "00f067aa0ba902b7"
ORDER = {
    "event": "tag",
    "id": "o-trace-1",
    "email": "ada.lovelace@example.com",
    "first_name": "Ada",
}


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    events: dict[str, dict[str, Any]]
    error: bool
    service: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class OtlpReceiver:
    """POST /v1/traces, as an OpenTelemetry collector takes it (OTLP/HTTP, protobuf)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.paths.append(self.path)
                receiver.take(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    self.spans.append(
                        Span(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            links=[(k.trace_id.hex(), k.span_id.hex()) for k in s.links],
                            events={
                                e.name: {a.key: _value(a.value) for a in e.attributes}
                                for e in s.events
                            },
                            error=s.status.code == 2,  # STATUS_CODE_ERROR
                            service=resource.get("service.name", ""),
                        )
                    )

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.name == name]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def tracing_to(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> OtlpReceiver:
    for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    return receiver


async def test_an_event_s_ingest_and_each_delivery_attempt_arrive_linked(
    database_url: str, fake_keap: FakeKeapServer, tracing_to: OtlpReceiver
) -> None:
    config: RelayConfig = make_config(DELIVERY_YAML)
    fake_keap.state.fail_next(503, count=1, operation="tags.add")  # two attempts
    async with running_relay(database_url, fake_keap, config) as relay:
        assert tracing.TRACER is not None
        refused = await relay.client.post(
            "/hooks/cart", json=ORDER, headers={"x-token": "wrong-token"}
        )
        assert refused.status_code == 401
        response = await relay.client.post(
            "/hooks/cart",
            json=ORDER,
            headers={"x-token": "t0ken", "traceparent": f"00-{SENDER_TRACE}-{SENDER_SPAN}-01"},
        )
        assert response.status_code == 202, response.text
        event_id = response.json()["event_id"]
        stored = await relay.wait_for(event_id, "delivered")
    assert tracing.TRACER is None  # stopped with the app, its queue sent
    spans = tracing_to.spans
    assert set(tracing_to.paths) == {"/v1/traces"}
    assert {s.service for s in spans} == {"infusionsoft-relay"}

    # The ingest span: a child of the sender's span, its phases events on it.
    (ingest,) = [s for s in tracing_to.named("POST /hooks/{source}") if s.trace_id == SENDER_TRACE]
    assert ingest.parent_id == SENDER_SPAN
    assert ingest.attributes["relay.source"] == "cart"
    assert ingest.attributes["relay.outcome"] == "accepted"
    assert ingest.attributes["http.response.status_code"] == 202
    assert ingest.attributes["relay.event_ids"] == [event_id]
    # In the order they ran: a token in a header is checked before the body is parsed.
    assert list(ingest.events) == ["verify", "parse", "plan", "store"]
    assert all(e["relay.duration_ms"] >= 0 for e in ingest.events.values())
    assert not [s for s in spans if s.parent_id == ingest.span_id]
    assert stored.headers[tracing.LINK_HEADER] == f"00-{SENDER_TRACE}-{ingest.span_id}-01"

    (unverified,) = [
        s for s in tracing_to.named("POST /hooks/{source}") if s.trace_id != SENDER_TRACE
    ]
    assert unverified.attributes["relay.outcome"] == "unauthorized"
    assert unverified.attributes["http.response.status_code"] == 401
    assert "relay.event_ids" not in unverified.attributes
    assert list(unverified.events) == []  # refused while verifying, before parsing

    # One delivery span per attempt, each linked to the ingest span.
    attempts = sorted(tracing_to.named("deliver"), key=lambda s: s.attributes["relay.attempt"])
    assert [a.attributes["relay.outcome"] for a in attempts] == ["retry", "delivered"]
    assert [a.error for a in attempts] == [True, False]
    for attempt in attempts:
        assert attempt.links == [(SENDER_TRACE, ingest.span_id)]
        assert attempt.trace_id != SENDER_TRACE  # a trace of its own, linked
        assert attempt.attributes["relay.event_id"] == event_id
        assert attempt.attributes["relay.contact"] == "a***@example.com"

    # A child span per Keap call, with its answer and Keap's throttle headers.
    first, second = (
        [s for s in spans if s.parent_id == a.span_id and s.trace_id == a.trace_id]
        for a in attempts
    )
    assert [(s.name, s.attributes["http.response.status_code"], s.error) for s in first] == [
        ("keap contact.upsert", 201, False),  # Keap: 201 for a new contact
        ("keap tags.add", 503, True),
    ]
    assert [s.name for s in second] == ["keap tags.add"]
    upsert = first[0]
    assert upsert.attributes["keap.operation"] == "contact.upsert"
    assert upsert.attributes["http.request.method"] in ("PUT", "POST")
    assert upsert.attributes["relay.event_id"] == event_id
    assert upsert.attributes["relay.route"] == "tag-only"
    assert int(second[0].attributes["keap.header.x-keap-product-throttle-available"]) >= 0

    # No secret and no full email anywhere.
    for span in spans:
        for value in span.attributes.values():
            text = str(value)
            for secret in ("ada.lovelace@", "t0ken", API_KEY, "wrong-token"):
                assert secret not in text, (span.name, value)


def test_the_otel_lines_of_dotenv_switch_tracing_on(
    tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ):
        monkeypatch.setenv(name, "")  # so that what .env adds is removed afterwards
        monkeypatch.delenv(name)
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"RELAY_LOG_PII=false\nOTEL_EXPORTER_OTLP_ENDPOINT={receiver.url}\n"
        "OTEL_EXPORTER_OTLP_HEADERS=x-api-key=backend-key-9f3a,x-team=ops\n"
    )
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.start_tracing(env_file) is False  # disabled wins
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    try:
        assert tracing.start_tracing(env_file) is True
        assert tracing.TRACER is not None
        # The tracing backend's key, read from .env, is a secret like any other.
        assert scrub("export failed: x-api-key=backend-key-9f3a") == (
            "export failed: x-api-key=[redacted]"
        )
    finally:
        tracing.stop_tracing()


def test_without_the_variable_no_exporter_is_made_and_no_sdk_loaded(tmp_path: Path) -> None:
    """In a fresh process (the SDK is imported by the tests above): a relay that received
    and stored a webhook has not imported the SDK, made a tracer or stored a span link
    (not even one the sender forged)."""
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys
        import httpx
        for name in list(os.environ):
            if name.startswith("OTEL_"):
                del os.environ[name]
        from app.main import create_app
        from app.observability import tracing
        from tests.conftest import make_config, make_settings
        from tests.delivery.conftest import DELIVERY_YAML

        async def main():
            settings = make_settings("sqlite:///{tmp_path / "relay.db"}")
            app = create_app(settings, config=make_config(DELIVERY_YAML), run_worker=False)
            async with app.fastapi.router.lifespan_context(app.fastapi):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://r") as c:
                    r = await c.post("/hooks/cart", json={{"event": "tag", "id": "1",
                        "email": "a@example.com"}}, headers={{"x-token": "t0ken",
                        tracing.LINK_HEADER: "00-{"1" * 32}-{"2" * 16}-01"}})
                    assert r.status_code == 202, r.text
                    event = await app.state.store.get_event(r.json()["event_id"])
                assert tracing.TRACER is None
                assert tracing.LINK_HEADER not in event.headers
            loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")
                            or m.startswith("opentelemetry.exporter"))
            assert not loaded, loaded
            print("untraced")

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "untraced"
