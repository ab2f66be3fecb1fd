"""A real ``relay serve`` bounds every connection: header size and count, a deadline for
the headers and for the body (408), idle keep-alive connections closed."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.server import SHUTDOWN_GRACE_SECONDS
from tests.conftest import CONFIG_YAML, SECRETS
from tests.support.processes import serving_api
from tests.support.senders import hex_signature

LIMITS = {
    "RELAY_MAX_HEADER_BYTES": "16384",
    "RELAY_MAX_HEADERS": "50",
    "RELAY_HEADER_TIMEOUT_SECONDS": "1.5",
    "RELAY_BODY_TIMEOUT_SECONDS": "1.5",
    "RELAY_KEEP_ALIVE_SECONDS": "1",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp_path = tmp_path_factory.mktemp("limits")
    database_url = f"sqlite:///{tmp_path / 'relay.db'}"
    with serving_api(tmp_path, database_url, CONFIG_YAML, {**SECRETS, **LIMITS}) as (port, _):
        yield port


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_slow_body_is_cut_with_408(served: int) -> None:
    with _connect(served) as sock:
        sock.sendall(
            b"POST /hooks/legacy-cart HTTP/1.1\r\nHost: relay\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"event": '
        )
        started = time.monotonic()
        for _ in range(5):  # a byte now and then: never fast enough to finish
            time.sleep(0.3)
            sock.sendall(b" ")
        answer = _read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"application/problem+json" in answer
    assert b"the body took over 1.5 s" in answer
    assert time.monotonic() - started < 5


def test_slow_headers_are_cut_with_408(served: int) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n")
        started = time.monotonic()
        for _ in range(5):  # slowloris: one header line now and then, never the end
            time.sleep(0.3)
            sock.sendall(b"X-Slow: 1\r\n")
        answer = _read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert time.monotonic() - started < 5


def test_a_connection_that_never_sends_is_closed(served: int) -> None:
    with _connect(served) as sock:
        started = time.monotonic()
        assert _read_answer(sock) == b""
    assert time.monotonic() - started < 5


def test_a_100_mb_header_is_refused_early(served: int) -> None:
    sent = 0
    with _connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Big: ")
        chunk = b"a" * 65536
        try:
            while sent < 100 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = _read_answer(sock)
        except ConnectionResetError:
            answer = b""
    # Refused after the 16 KiB limit: the sender could not get far into its 100 MB (socket
    # buffers hold a few MB at most).
    assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes of one header"
    if answer:  # the answer may be lost to a reset when unread bytes remain
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_header_just_over_the_limit_gets_431(served: int) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Big: " + b"a" * 17000)
        answer = _read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"over 16384 bytes" in answer


def test_too_many_headers_get_431(served: int) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(60))
    with _connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n" + headers + b"\r\n")
        answer = _read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"more than 50 headers" in answer


def test_a_webhook_in_several_reads_within_the_deadlines_is_taken(served: int) -> None:
    body = b'{"event": "sale", "email": "slow@example.com"}'
    signature = hex_signature(SECRETS["CART_SECRET"], body)
    with _connect(served) as sock:
        sock.sendall(b"POST /hooks/legacy-cart HTTP/1.1\r\nHost: relay\r\n")
        time.sleep(0.3)
        sock.sendall(
            b"Content-Type: application/json\r\nX-Signature: %s\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % (signature.encode(), len(body))
        )
        for start in range(0, len(body), 16):
            time.sleep(0.2)
            sock.sendall(body[start : start + 16])
        answer = _read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 202 "), answer[:300]


def test_an_idle_keep_alive_connection_is_closed(served: int) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert _read_answer(sock) == b""  # closed by the server, after RELAY_KEEP_ALIVE_SECONDS
    assert 0.5 < time.monotonic() - started < 5


def test_uvicorn_settings_come_from_the_environment(tmp_path: Path) -> None:
    from app.main import create_app
    from app.server import BoundedHttpToolsProtocol, server_config
    from tests.conftest import make_settings

    settings = make_settings(
        f"sqlite:///{tmp_path / 'r.db'}", max_connections=7, keep_alive_seconds=3
    )
    config = server_config(create_app(settings, run_worker=False), settings, "127.0.0.1", 0)
    config.load()
    protocol = config.http_protocol_class
    assert isinstance(protocol, type)
    assert issubclass(protocol, BoundedHttpToolsProtocol)
    assert (config.limit_concurrency, config.timeout_keep_alive) == (7, 3)
    assert protocol.limits.max_header_bytes == settings.max_header_bytes


def test_a_webhook_over_the_size_limit_gets_its_413_to_read(served: int) -> None:
    # Answered before the body ends, the rest read and dropped: the sender, which reads
    # only once it has sent everything, gets the 413 (not a reset), and the connection
    # serves its next request.
    with httpx.Client(base_url=f"http://127.0.0.1:{served}", timeout=10) as client:
        for _ in range(2):
            answer = client.post(
                "/hooks/legacy-cart",
                content=b"{" + b" " * (5 * 1024 * 1024) + b"}",
                headers={"Content-Type": "application/json"},
            )
            assert answer.status_code == 413
            assert answer.headers["content-type"] == "application/problem+json"
        assert client.get("/healthz").status_code == 200


def test_sigterm_cuts_a_request_still_in_flight_after_the_grace(tmp_path: Path) -> None:
    """A stop does not wait for a sender trickling its body (here with a 60 s body
    deadline): the request is cut after SHUTDOWN_GRACE_SECONDS, unanswered (so the sender
    retries), and the process then stops as on any SIGTERM."""
    database_url = f"sqlite:///{tmp_path / 'relay.db'}"
    slow = {**SECRETS, "RELAY_BODY_TIMEOUT_SECONDS": "60"}
    with serving_api(tmp_path, database_url, CONFIG_YAML, slow) as (port, process):
        sock = _connect(port)
        with sock:
            sock.sendall(
                b"POST /hooks/legacy-cart HTTP/1.1\r\nHost: relay\r\n"
                b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"event": '
            )
            time.sleep(0.3)
            process.terminate()
            started = time.monotonic()
            returncode = process.wait(timeout=SHUTDOWN_GRACE_SECONDS + 10)
            waited = time.monotonic() - started
            answer = _read_answer(sock)
    assert returncode == -signal.SIGTERM  # uvicorn's clean stop: the signal raised again
    assert SHUTDOWN_GRACE_SECONDS - 1 < waited < SHUTDOWN_GRACE_SECONDS + 5, waited
    assert not answer.startswith(b"HTTP/1.1 2"), answer[:200]
