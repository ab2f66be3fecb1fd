"""``POST /token``: Keap's OAuth2 token endpoint — the refresh grant, rotating the refresh
token on every use, and the authorization-code grant behind ``GET /app/oauth/authorize``.

Sources: the grants' fields as infusionsoft/infusionsoft-php sends them
(``src/Infusionsoft/Infusionsoft.php``: ``requestAccessToken`` posts client_id,
client_secret, code, grant_type=authorization_code and redirect_uri as form fields;
``refreshAccessToken`` uses HTTP Basic); the refusal bodies as KEAP_API_NOTES records them
(``invalid_grant`` "Invalid refresh token" and, later, ``invalid_request`` "Invalid Refresh
Token", both 400).
"""

from __future__ import annotations

import base64
import binascii
import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fake_keap.answers import failure_response, response_status
from fake_keap.behaviour import RefreshRefusal
from fake_keap.connections import ConnectionRegistry
from fake_keap.records import TOKEN_OPERATION
from fake_keap.state import FakeKeapState
from fake_keap.tokens import IssuedTokens


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


_REFUSALS: dict[RefreshRefusal, tuple[int, dict[str, str] | None]] = {
    "invalid_grant": (
        400,
        {"error": "invalid_grant", "error_description": "Invalid refresh token"},
    ),
    "invalid_request": (
        400,
        {"error": "invalid_request", "error_description": "Invalid Refresh Token"},
    ),
    # RFC 6749 §5.2; Keap's own wording for a bad client is not published.
    "invalid_client": (
        401,
        {"error": "invalid_client", "error_description": "Client authentication failed"},
    ),
    "bare_400": (400, None),
    "bare_401": (401, None),
}


def refusal_response(kind: RefreshRefusal) -> Response:
    status, body = _REFUSALS[kind]
    if body is None:
        return Response(status_code=status)
    return JSONResponse(body, status_code=status)


def _grant(state: FakeKeapState, request: Request, body: bytes) -> Response:
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    client_id, secret = _client_credentials(request, form)
    if not state.client_is_valid(client_id, secret):
        return refusal_response("invalid_client")
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        issued = state.redeem_authorization_code(form.get("code", ""), form.get("redirect_uri", ""))
        if issued is None:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid authorization code"},
                status_code=400,
            )
        return _issued(issued)
    if grant_type != "refresh_token":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    issued = state.refresh(form.get("refresh_token", ""))
    if issued is None:
        return refusal_response(state.behaviour.refresh_refusal)
    return _issued(issued)


def _issued(issued: IssuedTokens) -> Response:
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
        response = _grant(state, request, body)
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
