"""``relay serve`` writes a response's head and its first body message in one write
(``app.server.OneWriteCycle``), driven here through the real protocol class of
``relay serve`` with a transport that records each write."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from app.server import server_config
from app.settings import Settings

App = Any


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _serve_one(app: App, request: bytes) -> RecordingTransport:
    """Feed ``request`` to the protocol ``relay serve`` uses; the writes once it answered."""
    config = server_config(app, Settings(), "127.0.0.1", 8000)
    config.load()
    protocol = config.http_protocol_class(  # type: ignore[call-arg]
        config=config, server_state=ServerState(), app_state={}
    )
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(200):
        await asyncio.sleep(0.005)
        if (protocol.cycle is not None and protocol.cycle.response_complete) or transport.closed:
            break
    protocol.connection_lost(None)
    return transport


POST = b"POST /hooks/shop HTTP/1.1\r\nHost: relay\r\nContent-Length: 2\r\n\r\n{}"


async def _answer_202(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send(
        {"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_head_and_its_body_go_out_in_one_write() -> None:
    transport = await _serve_one(_answer_202, POST)
    assert len(transport.writes) == 1, transport.writes
    (written,) = transport.writes
    assert written.startswith(b"HTTP/1.1 202 Accepted\r\n")
    assert written.endswith(b"\r\n\r\nok")


async def test_a_streamed_body_writes_its_later_chunks_as_they_come() -> None:
    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"second"})

    transport = await _serve_one(stream, POST)
    assert len(transport.writes) == 2, transport.writes
    head_and_first, last = transport.writes
    assert head_and_first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in head_and_first
    assert head_and_first.endswith(b"5\r\nfirst\r\n")
    assert last == b"6\r\nsecond\r\n0\r\n\r\n"


async def test_a_head_request_gets_its_head() -> None:
    async def head(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b""})

    transport = await _serve_one(head, b"HEAD /hooks/shop HTTP/1.1\r\nHost: relay\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"]


async def test_a_connection_close_answer_is_written_before_the_close() -> None:
    transport = await _serve_one(
        _answer_202,
        b"POST /hooks/shop HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n"
        b"Content-Length: 2\r\n\r\n{}",
    )
    assert len(transport.writes) == 1
    assert b"connection: close" in transport.writes[0]
    assert transport.writes[0].endswith(b"ok")
    assert transport.closed


async def test_an_app_failing_after_its_start_gets_a_500_not_a_cut_answer() -> None:
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 202, "headers": []})
        raise RuntimeError("boom before the body")

    transport = await _serve_one(fails, POST)
    answer = b"".join(transport.writes)
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), answer
    assert answer.endswith(b"Internal Server Error")
    assert b"202" not in answer
