"""Dropping a connection mid-request, the way a flaky network or load balancer does.

ASGI gives an app no handle on its socket, so the harness runs uvicorn with an HTTP
protocol that records each connection's transport by peer address; a dropped call
looks up its own transport and aborts it before any byte of an answer is sent.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

Peer = tuple[str, int]


class ConnectionRegistry:
    """Open transports by peer address; only touched from the server's event loop."""

    def __init__(self) -> None:
        self._transports: dict[Peer, asyncio.Transport] = {}

    def add(self, peer: Peer, transport: asyncio.Transport) -> None:
        self._transports[peer] = transport

    def discard(self, peer: Peer) -> None:
        self._transports.pop(peer, None)

    def find(self, peer: Peer) -> asyncio.Transport | None:
        return self._transports.get(peer)

    def protocol_class(self) -> type[H11Protocol]:
        """An uvicorn HTTP protocol that keeps this registry up to date."""
        registry = self

        class TrackedH11Protocol(H11Protocol):
            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                registry.add(_peer_of(transport), transport)

            def connection_lost(self, exc: Exception | None) -> None:
                registry.discard(_peer_of(self.transport))
                super().connection_lost(exc)

        return TrackedH11Protocol


def _peer_of(transport: asyncio.BaseTransport) -> Peer:
    host, port = transport.get_extra_info("peername")[:2]
    return (str(host), int(port))


class ConnectionDropped(ConnectionResetError):
    """Raised when the app runs outside the harness and has no transport to abort."""


class DroppedConnection(Response):
    """A 'response' that aborts the TCP connection instead of answering."""

    def __init__(self, registry: ConnectionRegistry | None) -> None:
        super().__init__(status_code=500)
        self._registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        transport = None
        if self._registry is not None and client is not None:
            transport = self._registry.find((str(client[0]), int(client[1])))
        if transport is None:
            raise ConnectionDropped("fake Keap dropped the connection")
        transport.abort()
        # Wait for uvicorn to notice, so it does not try to answer on a dead socket.
        while (await receive())["type"] != "http.disconnect":
            pass
