"""What every REST handler of the fake shares: its signature, the 400 it raises on a bad
body, and the parsing of Keap's JSON fields (ids, strings, amounts)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse, Response

from fake_keap.routing import RestRoute
from fake_keap.state import FakeKeapState

RestHandler = Callable[[FakeKeapState, RestRoute, bytes, dict[str, str]], Response]


class BadRequest(Exception):
    pass


def message(status: int, text: str, route: RestRoute | None = None) -> JSONResponse:
    """An error answer: REST v2's ``Error`` schema (``code``, ``message``, ``status``;
    infusionsoft/keap-sdk sdks/v2/swagger.yml, ``components.schemas.Error``, the answer of
    every v2 operation's 4xx and 5xx) for a v2 route, v1's ``{"message"}`` otherwise."""
    if route is not None and route.v2:
        return v2_error(status, text)
    return JSONResponse({"message": text}, status_code=status)


def v2_error(status: int, text: str) -> JSONResponse:
    """``code`` the HTTP status, ``status`` its reason phrase: the values Keap puts in
    ``status`` are not published beyond the throttle's "Request Throttled" (Notes)."""
    body = {"code": status, "message": text, "status": HTTPStatus(status).phrase}
    return JSONResponse(body, status_code=status)


def json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"null")
    except ValueError as exc:
        raise BadRequest(f"Malformed JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("Expected a JSON object")
    return parsed


def integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be an integer")
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def string_id(value: object, name: str) -> int:
    """An id the v2 schema types as a string; a bare number is accepted as Keap's JSON
    binding does."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    raise BadRequest(f"{name} is required" if value is None else f"{name} must be an id")


def amount_cents(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{name} must be a number")
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), ROUND_HALF_UP))
