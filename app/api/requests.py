"""Reading a request body without ever holding more than a limit: the one reader of the
hook fast path (raw ASGI) and of the FastAPI endpoints that take a body."""

from __future__ import annotations

from fastapi import Request
from starlette.types import Message, Receive

from app.errors import PayloadTooLarge, RequestTimeout


async def read_limited(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (``declared``, the
    Content-Length, or read): a 300 MB body costs at most ``limit`` bytes of memory and
    one read past it."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestTimeout("the sender went away or was too slow: the body is incomplete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_body(request: Request, limit: int) -> bytes:
    """``read_limited`` for a FastAPI endpoint's request (whose body nothing read before)."""
    return await read_limited(request.receive, request.headers.get("content-length"), limit)
