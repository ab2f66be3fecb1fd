"""The HTTP server ``relay serve`` runs: uvicorn, with every connection bounded.

A webhook endpoint is public, so no connection may hold the server's memory or a slot for
long: the request line and headers are capped in size and count while they are read, and
must arrive within a deadline from the first byte (or from the connection's opening); the
body must arrive within its own deadline (a slow sender gets 408); idle keep-alive
connections close; past ``RELAY_MAX_CONNECTIONS`` new requests get 503.

uvicorn's httptools protocol bounds none of these (its only timer is the keep-alive one,
cancelled by any byte received), so ``BoundedHttpToolsProtocol`` adds them around the
same parser. A request whose headers (and body) arrive in one read, as small webhooks'
do, arms no timer at all: the ingest hot path pays a few attribute checks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from app.api.problems import PROBLEM_JSON, problem_body
from app.errors import HeadersTooLarge, RelayError, RequestTimeout
from app.settings import Settings

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent

# After a refusal: how long, and how much, is still read (and dropped) before closing.
LINGER_SECONDS = 1.0
LINGER_BYTES = 1 << 20


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 32_768
    max_headers: int = 100
    header_seconds: float = 10.0
    body_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            header_seconds=settings.header_timeout_seconds,
            body_seconds=settings.body_timeout_seconds,
        )


class _TooManyHeaders(Exception):
    """Raised inside the parser's callback to stop a request with too many headers."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header size/count limits and deadlines."""

    limits = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers = True  # waiting for a request's line and headers
        self._header_bytes = 0
        self._headers_began = 0.0  # loop time of the request's first byte
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._lingering = False  # refused: what still arrives is read and dropped
        self._lingered = 0
        self._linger_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_began = self.loop.time()  # a connection that never sends is cut too
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _TooManyHeaders):
                self._refuse(HeadersTooLarge(f"more than {self.limits.max_headers} headers"))
                return
            self._invalid_request()
            return
        except httptools.HttpParserError:
            self._invalid_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_headers:
            # Counted after parsing: a read that also holds the start of a body is not
            # held against the headers. At most one read (256 KiB) more is ever buffered.
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                limit = self.limits.max_header_bytes
                self._refuse(HeadersTooLarge(f"the request headers are over {limit} bytes"))
            elif len(self.headers or ()) > self.limits.max_headers:
                self._refuse(HeadersTooLarge(f"more than {self.limits.max_headers} headers"))
            else:
                self._arm_header_timer()
        elif self._body_timer is None and self._body_incomplete():
            self._body_timer = self.loop.call_later(self.limits.body_seconds, self._body_late)

    def _invalid_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    # Parser callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        self._headers_began = self.loop.time()

    def on_headers_complete(self) -> None:
        if len(self.headers) > self.limits.max_headers:
            raise _TooManyHeaders
        self._in_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:  # (an upgrade makes no new cycle)
            self.cycle.__class__ = OneWriteCycle  # its task has not run yet: it sends as one

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    # Deadlines ----------------------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        """The header deadline, from the request's first byte: armed only once a read
        has left the headers incomplete (or a connection opens)."""
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(
                self._headers_began + self.limits.header_seconds, self._headers_late
            )

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = self._linger_timer = None

    def _body_incomplete(self) -> bool:
        """Whether the request's body is still arriving (after an early answer too:
        the app may answer 413 before the body ends; the rest is then read and dropped,
        so that the sender, still sending, gets to read that answer)."""
        cycle = self.cycle
        return cycle is not None and cycle.more_body

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self._in_headers or self.transport.is_closing():
            return
        if self._header_bytes == 0:
            self.transport.close()  # a connection that never sent a byte: nothing to answer
            return
        self._refuse(RequestTimeout(f"the headers took over {self.limits.header_seconds:g} s"))

    def _body_late(self) -> None:
        self._body_timer = None
        if self._body_incomplete() and not self.transport.is_closing():
            self._refuse(RequestTimeout(f"the body took over {self.limits.body_seconds:g} s"))

    def _refuse(self, error: RelayError) -> None:
        """Answer ``error`` (unless a response has begun) and close the connection; the
        app, if it is waiting for the body, sees the client go away.

        The close lingers: our side is shut for writing, and up to LINGER_BYTES more are
        read and dropped for up to LINGER_SECONDS. Closing with unread bytes would send
        a reset, which can destroy the answer before the client reads it."""
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            body = problem_body(error)
            head = (
                f"content-type: {PROBLEM_JSON}\r\ncontent-length: {len(body)}\r\n"
                "connection: close\r\n\r\n"
            )
            self.transport.write(STATUS_LINE[error.status_code] + head.encode() + body)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self._cancel_timers()  # lingering starts: no deadline is owed an answer any more
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, with a response's head and its first body
    message written together: one write, one syscall and one TCP segment, not two.

    uvicorn writes the head when the app sends ``http.response.start``; here that message
    is held until the next one arrives, and what uvicorn writes for both is gathered into
    one write. An app that fails after starting its answer, before any of the body, now
    gets uvicorn's 500 instead of a cut connection. Why: the write is the event loop's
    costliest step on a webhook (docs/performance.md, "Register")."""

    _held: ASGISendEvent | None = None

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            self._held = message  # a second start (uvicorn's 500) replaces an unfinished one
            return
        held, self._held = self._held, None
        if held is None:
            await super().send(message)
            return
        transport = self.transport
        gathered = _GatheredWrites(transport)
        self.transport = gathered
        try:
            await super().send(held)
            await super().send(message)
        finally:
            self.transport = transport
            gathered.flush()


class _GatheredWrites(asyncio.Transport):
    """Stands in for a connection's transport while one send runs: what is written is
    kept and written as one when ``flush`` is called (or before the transport closes)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._parts.append(bytes(data))

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


def bounded_protocol(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, with ``limits``."""
    return type("RelayHttpProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})


# On SIGTERM, how long requests still in flight may take before they are cut (the process
# then closes the store and exits): under Docker's 10 s before SIGKILL (docs/deployment.md).
SHUTDOWN_GRACE_SECONDS = 8


def server_config(app: Any, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for ``relay serve`` (documented in docs/deployment.md)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=False,  # X-Forwarded-For is honoured only from RELAY_TRUSTED_PROXIES
        server_header=False,
        lifespan="on",
        http=bounded_protocol(ConnectionLimits.from_settings(settings)),
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
