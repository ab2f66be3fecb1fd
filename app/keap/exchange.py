"""One HTTP exchange on the shared client, with the relay's timeouts and a cap on how much of
a response body is read (a runaway proxy page must not fill memory), and its report."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.keap.errors import KeapError, classify_transport_error
from app.keap.models import KeapCall
from app.keap.throttle import keap_headers
from app.observability import tracing

# A Keap call can legitimately take many seconds; connecting should not.
KEAP_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool  # the body was longer than MAX_RESPONSE_BYTES and was cut there

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def scrubbed(self, secrets: list[str], replacement: bytes) -> Reply:
        """This reply with every secret removed from its body, before anything quotes it."""
        body = self.body
        for secret in secrets:
            body = body.replace(secret.encode("utf-8"), replacement)
        return Reply(self.status, self.headers, body, self.truncated)


async def send_capped(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    content: bytes | None = None,
    json: Any = None,
    data: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> Reply:
    """Send one request and read at most MAX_RESPONSE_BYTES of the answer.

    Raises httpx.HTTPError when no complete response arrives.
    """
    request = http.build_request(
        method,
        url,
        headers=dict(headers),
        content=content,
        json=json,
        data=data,
        timeout=KEAP_TIMEOUT,
    )
    if auth is None:
        response = await http.send(request, stream=True)
    else:
        response = await http.send(request, stream=True, auth=httpx.BasicAuth(*auth))
    try:
        body, truncated = await _read_capped(response)
    finally:
        await response.aclose()
    return Reply(response.status_code, response.headers, body, truncated)


async def _read_capped(response: httpx.Response) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return b"".join(chunks)[:MAX_RESPONSE_BYTES], True
    return b"".join(chunks), False


class TracedCall:
    """One exchange with Keap, reported as a KeapCall however it ends (see ``traced``)."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.status: int | None = None
        self.throttle: dict[str, str] = {}

    async def send(self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Reply:
        """Send, classifying a transport failure, and note the answer's status and headers."""
        try:
            reply = await send_capped(client, method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise classify_transport_error(self.operation, exc) from exc
        self.status, self.throttle = reply.status, keap_headers(reply.headers)
        return reply


@contextlib.asynccontextmanager
async def traced(
    operation: str,
    method: str,
    url: str,
    secrets: Callable[[], list[str]],
    report: Callable[[KeapCall], None],
) -> AsyncIterator[TracedCall]:
    """Time the exchange inside the block and report it once, with the classified error's
    detail (secrets redacted) when it fails — for API calls and token refreshes alike."""
    started = time.perf_counter()
    call = TracedCall(operation)
    error: str | None = None
    try:
        yield call
    except asyncio.CancelledError:
        error = "cancelled"
        raise
    except KeapError as err:
        err.redact(secrets())
        error = err.detail
        raise
    finally:
        duration = time.perf_counter() - started
        path = urlsplit(url).path
        record = KeapCall(operation, method, path, call.status, duration, error, call.throttle)
        report(record)
        if tracing.TRACER is not None:
            tracing.keap_call_span(record)
