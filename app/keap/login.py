"""``relay keap login``: OAuth2's authorization-code flow, for a person at a terminal.

1. print the authorize URL (RELAY_KEAP_AUTHORIZE_URL with client_id, redirect_uri,
   response_type=code, scope=full, and a random state);
2. take the code: pasted on stdin (the code alone or the whole redirected URL), or caught
   by a one-shot listener on 127.0.0.1:PORT (``--listen PORT``; the redirect URI is then
   http://127.0.0.1:PORT/callback, which must be registered on the Keap app);
3. exchange it at the token endpoint — form fields client_id, client_secret, code,
   grant_type=authorization_code, redirect_uri, as Keap's PHP SDK sends them
   (infusionsoft/infusionsoft-php ``requestAccessToken``);
4. store the tokens through the token store, where every relay process finds them.

No token is ever printed.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from app.bootstrap import DatabaseUnavailable, Opened, bootstrap
from app.keap.auth import request_tokens, seed_hash
from app.keap.client import PROBE_PATH
from app.keap.errors import KeapError
from app.keap.models import KeapCall, StoredToken, TokenStore
from app.settings import Settings

CALLBACK_PATH = "/callback"
STORE_ATTEMPTS = 5
_DONE_PAGE = (
    b"<!doctype html><title>relay</title><p>Infusionsoft authorised the relay. "
    b"You can close this tab and return to the terminal.</p>"
)


class LoginError(Exception):
    """The login cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Callback:
    code: str | None
    state: str | None
    error: str | None


def authorize_url(base: str, client_id: str, redirect_uri: str, state: str) -> str:
    query = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "full",
        "state": state,
    }
    return f"{base}{'&' if '?' in base else '?'}{urlencode(query)}"


def read_callback(text: str) -> Callback:
    """A pasted code, or a redirected URL (or its query) carrying ``code`` or ``error``."""
    text = text.strip()
    if "code=" not in text and "error=" not in text:
        return Callback(text or None, None, None)
    query = parse_qs(text.split("?", 1)[1] if "?" in text else text)

    def first(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    return Callback(first("code"), first("state"), first("error_description") or first("error"))


def check_callback(callback: Callback, expected_state: str) -> str:
    if callback.error:
        raise LoginError(f"Infusionsoft did not authorise the relay: {callback.error}")
    if callback.state is not None and callback.state != expected_state:
        raise LoginError("the answer's state does not match this login: start again")
    if not callback.code:
        raise LoginError("no authorization code was given")
    return callback.code


class CallbackListener:
    """Answers the browser's one redirect to http://127.0.0.1:PORT/callback."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[Callback] | None = None

    async def start(self) -> int:
        self._result = asyncio.get_running_loop().create_future()
        try:
            self._server = await asyncio.start_server(self._answer, "127.0.0.1", self._port)
        except OSError as exc:
            raise LoginError(f"--listen {self._port}: cannot listen on 127.0.0.1: {exc}") from exc
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def wait(self, seconds: float) -> Callback:
        assert self._result is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), seconds)
        except TimeoutError:
            raise LoginError(f"no redirect arrived within {seconds:g} s") from None
        finally:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1")
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
                pass  # headers: not needed
        except (TimeoutError, ConnectionError):
            writer.close()
            return
        parts = line.split(" ")
        target = parts[1] if len(parts) >= 2 else ""
        if urlsplit(target).path != CALLBACK_PATH:
            writer.write(_response("404 Not Found", b""))
        else:
            writer.write(_response("200 OK", _DONE_PAGE))
            if self._result is not None and not self._result.done():
                self._result.set_result(read_callback(target))
        await writer.drain()
        writer.close()


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def store_tokens(store: TokenStore, token: StoredToken) -> None:
    """Replace whatever token is stored (compare-and-swap, retried if a relay rotates)."""
    for _ in range(STORE_ATTEMPTS):
        current = await store.load_oauth_token()
        previous = current.refresh_token if current is not None else None
        if await store.save_oauth_token(token, previous_refresh_token=previous):
            return
    raise LoginError("the stored token kept changing while saving: run the login again")


async def check_access(http: httpx.AsyncClient, base_url: str, access_token: str) -> str:
    """Who the new token acts as (the probe every relay uses), for the person to confirm."""
    response = await http.get(
        base_url.rstrip("/") + PROBE_PATH,
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
    )
    if response.status_code != 200:
        return f"(the new token's check answered HTTP {response.status_code})"
    try:
        payload = response.json()
    except ValueError:
        return ""
    email = payload.get("email") if isinstance(payload, dict) else None
    return f"as {email}" if isinstance(email, str) else ""


def _ignore(call: KeapCall) -> None:
    return None


async def login(settings: Settings, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    client_id = settings.keap_client_id
    secret = settings.keap_client_secret.get_secret_value() if settings.keap_client_secret else ""
    if not client_id or not secret:
        raise LoginError(
            "set RELAY_KEAP_CLIENT_ID and RELAY_KEAP_CLIENT_SECRET (your Keap developer "
            "app's key and secret) first"
        )
    try:
        # The store opens before the code is asked for: a code is single-use.
        async with bootstrap(settings, pool_size=1) as opened:
            code, redirect_uri = await _authorization_code(settings, args, client_id, stdin, out)
            who = await _exchange_and_store(opened, settings, client_id, secret, code, redirect_uri)
    except DatabaseUnavailable as exc:  # the database is the operator's to fix
        raise LoginError(
            f"cannot open RELAY_DATABASE_URL ({type(exc.cause).__name__}: {exc.cause}); nothing "
            "was sent to Infusionsoft"
        ) from exc
    print(f"Authorised {who}".rstrip() + ": the OAuth tokens are stored in the database.", file=out)
    print(
        "Running relays adopt them at their next credential probe; `relay serve` uses them "
        "from the start.",
        file=out,
    )
    return 0


async def _exchange_and_store(
    opened: Opened,
    settings: Settings,
    client_id: str,
    secret: str,
    code: str,
    redirect_uri: str,
) -> str:
    """Trade the code for tokens, store them, and say whom they act as."""
    token = await _exchange(opened.http, settings, client_id, secret, code, redirect_uri)
    try:
        await store_tokens(opened.store, token)
    except LoginError:
        raise
    except Exception as exc:  # the database is the operator's to fix
        raise LoginError(
            f"cannot store the tokens in RELAY_DATABASE_URL ({type(exc).__name__}: "
            f"{exc}); the code is used up: run the login again once it is reachable"
        ) from exc
    try:
        return await check_access(opened.http, settings.keap_base_url, token.access_token or "")
    except httpx.HTTPError as exc:
        return f"(the new token could not be checked: {type(exc).__name__})"


async def _authorization_code(
    settings: Settings, args: argparse.Namespace, client_id: str, stdin: TextIO, out: TextIO
) -> tuple[str, str]:
    """Send the person to Keap and bring back the code (and the redirect URI it is for)."""
    listener = CallbackListener(args.listen) if args.listen is not None else None
    if listener is not None:
        redirect_uri = f"http://127.0.0.1:{await listener.start()}{CALLBACK_PATH}"
    elif args.redirect_uri:
        redirect_uri = args.redirect_uri
    else:
        raise LoginError(
            "give --listen PORT (redirect URI http://127.0.0.1:PORT/callback) or "
            "--redirect-uri URI; either must be registered on your Keap app"
        )
    state = secrets.token_urlsafe(16)
    print("Open this address in a browser and allow access:", file=out)
    print(authorize_url(settings.keap_authorize_url, client_id, redirect_uri, state), file=out)
    if listener is not None:
        print(f"Waiting for the redirect to {redirect_uri} …", file=out, flush=True)
        callback = await listener.wait(args.timeout)
    else:
        print(
            "Then paste the address you were sent to (or just its code) and press Enter:",
            file=out,
            flush=True,
        )
        callback = read_callback(await asyncio.to_thread(stdin.readline))
    return check_callback(callback, state), redirect_uri


async def _exchange(
    http: httpx.AsyncClient,
    settings: Settings,
    client_id: str,
    secret: str,
    code: str,
    redirect_uri: str,
) -> StoredToken:
    env_token = settings.keap_refresh_token
    # Stamped with the environment's seed, so a restart keeps this token, not the old seed.
    seed = seed_hash(env_token.get_secret_value()) if env_token else None
    form = {
        "client_id": client_id,
        "client_secret": secret,
        "code": code,
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
    }
    return await request_tokens(
        http,
        settings.keap_token_url,
        form,
        auth=None,
        secrets=lambda: [secret, code],
        report=_ignore,
        seed_hash=seed,
    )


def run_login(settings: Settings, args: argparse.Namespace) -> int:
    """The CLI entry: exit 0 when the tokens are stored, 2 (reason on stderr) otherwise."""
    try:
        return asyncio.run(login(settings, args, sys.stdin, sys.stdout))
    except LoginError as exc:
        print(f"relay keap login: {exc}", file=sys.stderr)
    except KeapError as exc:
        print(f"relay keap login: Infusionsoft refused: {exc.detail}", file=sys.stderr)
    except httpx.HTTPError as exc:
        print(f"relay keap login: cannot reach Infusionsoft: {exc}", file=sys.stderr)
    return 2
