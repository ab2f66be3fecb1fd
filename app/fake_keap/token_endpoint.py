"""``POST /token``: Keap's OAuth2 refresh grant, rotating the refresh token on every use."""

from __future__ import annotations

import base64
import binascii
import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.fake_keap.answers import failure_response, response_status
from app.fake_keap.connections import ConnectionRegistry
from app.fake_keap.records import TOKEN_OPERATION
from app.fake_keap.state import FakeKeapState


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


def _refresh(state: FakeKeapState, request: Request, body: bytes) -> Response:
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    client_id, secret = _client_credentials(request, form)
    if not state.client_is_valid(client_id, secret):
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    if form.get("grant_type") != "refresh_token":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    issued = state.refresh(form.get("refresh_token", ""))
    if issued is None:
        return JSONResponse(
            {"error": "invalid_grant", "error_description": "Invalid refresh token"},
            status_code=400,
        )
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "expires_in": issued.expires_in,
            "token_type": "bearer",
            "scope": "full",
        }
    )


async def token_endpoint(request: Request) -> Response:
    arrived_at = time.time()
    state: FakeKeapState = request.app.state.fake
    registry: ConnectionRegistry | None = request.app.state.connections
    body = await request.body()
    failure = state.take_forced_token_failure()
    if failure is not None and not failure.after_handling:
        response = failure_response(failure.status, failure.retry_after, registry)
    else:
        response = _refresh(state, request, body)
        if failure is not None:
            # The token rotated, but the client never learns the new one.
            response = failure_response(failure.status, failure.retry_after, registry)
    state.record_request(
        arrived_at,
        TOKEN_OPERATION,
        "basic",
        response_status(response),
        request.method,
        request.url.path,
    )
    return response
