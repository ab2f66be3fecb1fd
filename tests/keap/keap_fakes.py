"""Test doubles for the Keap client's unit tests: in-memory stand-ins for the lead's rate
gate and token store, and helpers that speak the wire contract."""

from __future__ import annotations

import hashlib
import xmlrpc.client
from collections.abc import Mapping
from typing import Any

import httpx

from app.keap.client import KeapCall, KeapClient, KeapCredentials, StoredToken
from app.keap.models import BeforeSend
from app.keap.transport import KeapTransport

BASE_URL = "https://keap.test/crm"
TOKEN_URL = "https://keap.test/token"
XMLRPC_URL = f"{BASE_URL}/xmlrpc/v1"

API_KEY = "KeapAK-pat-5f1e9c0d2b7a4e68"
CLIENT_ID = "relay-client-id"
CLIENT_SECRET = "client-secret-9c2f1b7e"
ENV_REFRESH_TOKEN = "env-refresh-4b8d1f0a"

KEY_CREDENTIALS = KeapCredentials(api_key=API_KEY)
OAUTH_CREDENTIALS = KeapCredentials(
    client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=ENV_REFRESH_TOKEN
)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class MemoryTokenStore:
    """A TokenStore with the compare-and-swap semantics of the real one; every save is
    appended to ``events`` (shared with the tests' fake Keap, to check ordering)."""

    def __init__(self, token: StoredToken | None = None, events: list[str] | None = None) -> None:
        self.token = token
        self.events = events if events is not None else []
        self.saves: list[tuple[StoredToken, str | None]] = []
        self.fail_saves = 0  # how many saves raise, as a database outage would

    async def load_oauth_token(self) -> StoredToken | None:
        return self.token

    async def save_oauth_token(
        self, token: StoredToken, *, previous_refresh_token: str | None
    ) -> bool:
        if self.fail_saves:
            self.fail_saves -= 1
            raise ConnectionError("database unavailable")
        current = self.token.refresh_token if self.token is not None else None
        if current != previous_refresh_token:
            return False
        self.token = token
        self.saves.append((token, previous_refresh_token))
        self.events.append(f"saved {token.refresh_token}")
        return True


class RecordingGate:
    def __init__(self) -> None:
        self.acquired = 0
        self.observed: list[tuple[dict[str, str], int]] = []

    async def acquire(self, before_send: BeforeSend | None = None, *, urgent: bool = False) -> None:
        self.acquired += 1
        if before_send is not None:
            await before_send()

    def observe(self, headers: Mapping[str, str], status: int) -> None:
        self.observed.append((dict(headers), status))


class Harness:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.calls: list[KeapCall] = []
        self.gate = RecordingGate()

    def client(
        self,
        credentials: KeapCredentials = KEY_CREDENTIALS,
        store: MemoryTokenStore | None = None,
    ) -> KeapClient:
        return KeapClient(
            KeapTransport(
                self.http,
                base_url=BASE_URL,
                token_url=TOKEN_URL,
                credentials=credentials,
                token_store=store,
                gate=self.gate,
                observer=self.calls.append,
            )
        )


def xmlrpc_answer(value: Any, status: int = 200) -> httpx.Response:
    body = xmlrpc.client.dumps((value,), methodresponse=True)
    return httpx.Response(status, content=body.encode(), headers={"Content-Type": "text/xml"})


def xmlrpc_fault(code: int, message: str) -> httpx.Response:
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message))
    return httpx.Response(200, content=body.encode(), headers={"Content-Type": "text/xml"})


def xmlrpc_request(request: httpx.Request) -> tuple[tuple[Any, ...], str | None]:
    params, method = xmlrpc.client.loads(request.content)
    return params, method


def token_answer(access: str, refresh: str, expires_in: int = 86400) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": expires_in,
            "token_type": "bearer",
            "scope": "full",
        },
    )
