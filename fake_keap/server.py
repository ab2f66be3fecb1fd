"""``FakeKeapServer``: the fake on a real loopback port, served from a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType

import uvicorn

from fake_keap.app import create_app
from fake_keap.connections import ConnectionRegistry
from fake_keap.state import FakeKeapState

STARTUP_TIMEOUT = 10.0
TICK_SECONDS = 0.1


class _PromptServer(uvicorn.Server):
    """Exits as soon as asked instead of on uvicorn's next tick: test teardowns add up."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_SECONDS)

    def request_exit(self) -> None:
        """Thread-safe."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)


class FakeKeapServer:
    """Serve a ``FakeKeapState`` over HTTP until ``stop``; ``port=0`` picks a free port.

    Usable as a context manager. ``settings`` are ``FakeBehaviour`` fields, used when no
    ``state`` is given.
    """

    def __init__(
        self,
        state: FakeKeapState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **settings: object,
    ) -> None:
        self.state = state if state is not None else FakeKeapState(**settings)
        self._host = host
        # An explicit IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections;
        # without it Nagle's algorithm holds each response body back ~40 ms.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()  # a busy port: no socket left open behind the error
            raise
        self.port: int = self._socket.getsockname()[1]
        connections = ConnectionRegistry()
        config = uvicorn.Config(
            create_app(self.state, connections),
            http=connections.protocol_class(),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = _PromptServer(config)
        self._thread = threading.Thread(target=self._serve, name="fake-keap", daemon=True)

    @property
    def root_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/crm"

    @property
    def token_url(self) -> str:
        return self.root_url + "/token"

    @property
    def authorize_url(self) -> str:
        return self.root_url + "/app/oauth/authorize"

    @property
    def control_url(self) -> str:
        return self.root_url + "/_fake"

    def start(self) -> FakeKeapServer:
        """Start serving; returns once the port answers."""
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._answers():
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fake Keap server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.request_exit()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> FakeKeapServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def _answers(self) -> bool:
        if not self._server.started:
            return False
        try:
            with socket.create_connection((self._host, self.port), timeout=0.5):
                return True
        except OSError:
            return False
