"""Who may use ``/admin``: scripts send the bearer token, browsers keep a session cookie.

The cookie never holds the token: it holds ``<session id>.<HMAC(token, id)>``, and the
database holds the SHA-256 of each live session id with its expiry. Signing out deletes
that row on every replica; changing RELAY_ADMIN_TOKEN signs every browser out (the MAC no
longer matches). The cookie is ``Secure`` whenever the browser's connection was HTTPS,
directly or through a trusted proxy. The CSRF token that dashboard forms carry is derived
from the session value (double submit: the server recomputes it from the cookie and
compares). Requests authenticated by the bearer header need no CSRF token, since
browsers never attach that header on their own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse

from app.api.deps import get_proxies, get_settings, get_store
from app.api.problems import problem_for
from app.errors import Forbidden, NotFound, Unauthorized

SESSION_COOKIE = "relay_admin_session"
COOKIE_PATH = "/admin"
SESSION_MAX_AGE = 7 * 24 * 3600


class AdminDisabled(NotFound):
    """RELAY_ADMIN_TOKEN is unset: /admin does not exist, as far as anyone can tell."""


class BearerRejected(Exception):
    """The JSON API's 401; answered by AdminRoute with ``WWW-Authenticate: Bearer``."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class LoginRequired(Exception):
    """A browser without a session: AdminRoute sends it to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class Operator:
    """An authenticated dashboard user; ``csrf_token`` is empty for bearer clients."""

    via: Literal["bearer", "session"]
    csrf_token: str = ""


def configured_token(request: Request) -> bytes:
    secret = get_settings(request).admin_token
    value = secret.get_secret_value() if secret is not None else ""
    if not value:
        raise AdminDisabled("Not Found")
    return value.encode("utf-8")


def _mac(token: bytes, message: str) -> str:
    return hmac.new(token, message.encode("utf-8"), hashlib.sha256).hexdigest()


def new_session_value(token: bytes) -> str:
    """A new cookie value: a random id and its MAC under the admin token."""
    session_id = secrets.token_urlsafe(32)
    return f"{session_id}.{_mac(token, f'relay-admin-session|{session_id}')}"


def session_key(token: bytes, value: str) -> str | None:
    """What the database knows a session by (the SHA-256 of its id), when ``value`` was
    issued under ``token``; None for a forged or foreign value."""
    session_id, _, mac = value.partition(".")
    if not session_id or not mac:
        return None
    expected = _mac(token, f"relay-admin-session|{session_id}")
    if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")):
        return None
    return hashlib.sha256(session_id.encode()).hexdigest()


async def issue_session(request: Request, token: bytes) -> str:
    """Start a session (stored for SESSION_MAX_AGE) and return its cookie value."""
    value = new_session_value(token)
    key = session_key(token, value)
    assert key is not None
    now = time.time()
    await get_store(request).create_admin_session(key, now, now + SESSION_MAX_AGE)
    return value


async def current_session(request: Request, token: bytes) -> str | None:
    """The browser's session cookie value while its session is live, else None."""
    value = request.cookies.get(SESSION_COOKIE)
    key = session_key(token, value) if value else None
    if key is None or not await get_store(request).admin_session_active(key, time.time()):
        return None
    return value


async def end_session(request: Request, token: bytes) -> None:
    value = request.cookies.get(SESSION_COOKIE)
    key = session_key(token, value) if value else None
    if key is not None:
        await get_store(request).revoke_admin_session(key)


def csrf_token_for(token: bytes, session: str) -> str:
    return _mac(token, f"relay-admin-csrf|{session}")


def token_matches(token: bytes, candidate: str) -> bool:
    return hmac.compare_digest(token, candidate.encode("utf-8"))


def _bearer_credential(request: Request) -> str | None:
    """The bearer credential sent, '' for a malformed header, None for no header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credential = header.strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def require_bearer(request: Request) -> None:
    """The JSON API's guard: 404 when admin is disabled, 401 without the right token."""
    token = configured_token(request)
    credential = _bearer_credential(request)
    if credential is None:
        raise BearerRejected("send the admin token as 'Authorization: Bearer <token>'")
    if not credential or not token_matches(token, credential):
        raise BearerRejected("the bearer token is not the admin token")


async def require_operator(request: Request) -> Operator:
    """The dashboard's guard: the bearer header (scripts) or a session cookie (browsers).

    Only a ``Bearer`` Authorization header is taken as a script's: a proxy in front that
    asks for HTTP Basic auth passes its own header along, which must not lock a browser
    with a valid session out.
    """
    token = configured_token(request)
    header = request.headers.get("authorization", "")
    if header.strip().partition(" ")[0].lower() == "bearer":
        require_bearer(request)
        return Operator("bearer")
    session = await current_session(request, token)
    if session is not None:
        return Operator("session", csrf_token_for(token, session))
    next_path = request.url.path if request.method == "GET" else "/admin/"
    if request.method == "GET" and request.url.query:
        next_path += "?" + request.url.query
    raise LoginRequired(next_path)


OperatorDep = Annotated[Operator, Depends(require_operator)]


def verify_csrf(operator: Operator, submitted: str | None) -> None:
    if operator.via == "bearer":
        return
    if not submitted or not hmac.compare_digest(
        operator.csrf_token.encode(), submitted.encode("utf-8", "replace")
    ):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and retry")


def safe_next_path(candidate: str | None) -> str:
    """Where to go after login: only a path inside /admin, never another site."""
    if not candidate or "\\" in candidate:
        return "/admin/"
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return "/admin/"
    if "//" in parts.path:
        return "/admin/"
    return candidate


def came_over_https(request: Request) -> bool:
    """HTTPS to the relay itself, or to a trusted proxy that says so (X-Forwarded-Proto)."""
    peer = request.client.host if request.client else None
    return get_proxies(request).came_over_https(request.url.scheme, request.headers, peer)


def client_address(request: Request) -> str:
    peer = request.client.host if request.client else None
    return str(get_proxies(request).client_address(request.headers, peer) or "unknown")


def set_session_cookie(response: Response, request: Request, session: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=SESSION_MAX_AGE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=came_over_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=came_over_https(request),
    )


def admin_path(request: Request, path: str) -> str:
    """``path`` (starting with /admin) under the app's root path, for links and redirects."""
    return f"{request.scope.get('root_path', '')}{path}"


class AdminRoute(APIRoute):
    """Turns the auth outcomes no RelayError can express into answers: a 401 carrying
    ``WWW-Authenticate: Bearer``, and a redirect to the login form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except BearerRejected as exc:
                challenge = {"WWW-Authenticate": 'Bearer realm="relay-admin"'}
                return problem_for(Unauthorized(exc.detail), challenge)
            except LoginRequired as exc:
                target = admin_path(request, "/admin/login?next=" + quote(exc.next_path))
                return RedirectResponse(target, status_code=303)

        return guarded
