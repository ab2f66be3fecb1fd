"""Reading a request body on the FastAPI side without ever holding more than a limit."""

from __future__ import annotations

from fastapi import Request
from starlette.requests import ClientDisconnect

from app.errors import PayloadTooLarge, RequestTimeout


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (declared or read):
    a 300 MB body costs at most ``limit`` bytes of memory and one read past it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise RequestTimeout("the client went away before the body was complete") from None
    return b"".join(chunks)
