"""Every error answer is ``application/problem+json`` (RFC 9457)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from app import errors
from app.errors import MethodNotAllowed, RelayError, TooManyRequests

PROBLEM_JSON = "application/problem+json"
# What an unexpected failure tells the client (the traceback goes to the log).
UNEXPECTED_DETAIL = "an unexpected error happened; see the logs"
log = logging.getLogger("relay.http")


# The shape problem_document builds, for the OpenAPI document (its docstring is shown there).
class Problem(BaseModel):
    """An ``application/problem+json`` error (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str


def _slugs() -> dict[int, str]:
    """The type slug of each status: the relay's own errors', and FastAPI's 422."""
    found = {422: "unprocessable-content", RelayError.status_code: RelayError.slug}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, RelayError):
            found.setdefault(value.status_code, value.slug)
    return found


# One type URI per status, whichever layer answers (the hook path, FastAPI's handlers).
_SLUGS = _slugs()


def problem_document(
    status: int, title: str, detail: str, slug: str | None = None
) -> dict[str, Any]:
    """The one builder of a problem document (the fields of ``Problem``)."""
    return {
        "type": f"https://relay.invalid/problems/{slug or _SLUGS.get(status, status)}",
        "title": title,
        "status": status,
        "detail": detail,
    }


def problem(
    status: int,
    title: str,
    detail: str,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = problem_document(status, title, detail, slug)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(error: RelayError) -> bytes:
    """The problem+json document of an error, as bytes (for the raw ASGI hot path)."""
    document = problem_document(error.status_code, error.title, error.detail, error.slug)
    return json.dumps(document, separators=(",", ":")).encode()


# A body too slow: the connection is closed. (The rest of one too large is read and
# dropped by the server, within RELAY_BODY_TIMEOUT_SECONDS, so the client reads the 413.)
_ERROR_HEADERS = {408: {"Connection": "close"}}


def error_headers(error: RelayError) -> dict[str, str]:
    """The headers that go with an error's answer, on every path (the hooks' too)."""
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(error.retry_after)}
    if isinstance(error, MethodNotAllowed):
        return {"Allow": error.allow}
    return _ERROR_HEADERS.get(error.status_code, {})


def problem_for(error: RelayError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """``error``'s answer, with its own headers and ``headers``."""
    return problem(
        error.status_code,
        error.title,
        error.detail,
        error.slug,
        {**error_headers(error), **(headers or {})},
    )


def install_problem_handlers(app: FastAPI) -> None:
    async def relay_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RelayError)
        return problem_for(exc)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: "Not Found", 405: "Method Not Allowed", 401: "Unauthorized"}
        title = titles.get(exc.status_code, "Error")
        # Starlette's own headers are kept: its 405 names the route's methods in Allow.
        return problem(exc.status_code, title, str(exc.detail), headers=exc.headers)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for error in exc.errors():
            location = ".".join(str(p) for p in error.get("loc", ()))
            parts.append(f"{location}: {error.get('msg', 'invalid')}")
        return problem(422, "Unprocessable Content", "; ".join(parts) or "invalid request")

    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "Internal Server Error", UNEXPECTED_DETAIL)

    app.add_exception_handler(RelayError, relay_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
