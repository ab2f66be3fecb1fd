"""A relay that delivers (API + worker) against the project's fake Infusionsoft."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.config.models import RelayConfig
from app.main import create_app
from devkit.cart import cart_source, headers
from fake_keap.server import FakeKeapServer
from tests.conftest import make_config, make_settings

API_KEY = "test-key"

DELIVERY_YAML = (
    cart_source()
    + """routes:
  - name: paid-order
    source: cart
    event: order.paid
    contact:
      email: body.email
      given_name: body.first_name
      family_name: body.last_name
      opt_in_reason: "'Bought from the shop'"
    actions:
      - action_set: 42
      - tags: [101, 102]
      - sequence: {campaign: 7, sequence: 3}
      - email_template: 55
      - goal: {integration: shop, call_name: purchase}
  - name: cancelled
    source: cart
    event: member.cancelled
    contact: {email: body.email}
    actions:
      - remove_tags: [101]
      - remove_sequence: {campaign: 7, sequence: 3}
  - name: tag-only
    source: cart
    event: tag
    contact: {email: body.email, given_name: body.first_name}
    actions:
      - tags: [500]
"""
)


@pytest.fixture
def fake_keap() -> Iterator[FakeKeapServer]:
    with FakeKeapServer(valid_keys={API_KEY}) as server:
        yield server


@pytest.fixture
def delivery_config() -> RelayConfig:
    return make_config(DELIVERY_YAML)


class Relay:
    """A running relay app with its HTTP client and store."""

    def __init__(self, client: httpx.AsyncClient, app: Any) -> None:
        self.client = client
        self.app = app

    @property
    def store(self) -> Any:
        return self.app.state.store

    async def post(self, body: dict[str, Any]) -> str:
        response = await self.client.post("/hooks/cart", json=body, headers=headers())
        assert response.status_code == 202, response.text
        event_id: str = response.json()["event_id"]
        return event_id

    async def event(self, event_id: str) -> Any:
        return await self.store.get_event(event_id)

    async def wait_for(self, event_id: str, status: str, within: float = 15.0) -> Any:
        deadline = time.monotonic() + within
        while True:
            event = await self.event(event_id)
            # The status is committed before the worker logs and counts it: wait for the
            # worker to let go of the event too, so a test can stop the relay right after.
            if event.status == status and not self._worker_busy_with(event_id):
                return event
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{event_id} is {event.status} (wanted {status}): {event.last_error}; "
                    f"steps {[(s.action, s.status, s.last_error) for s in event.steps]}"
                )
            await asyncio.sleep(0.05)

    async def readiness(self, check: str, status: str, within: float) -> dict[str, Any]:
        """/readyz's answer (and its status ``code``) once its ``check`` says ``status``."""
        for _ in range(int(within / 0.05)):
            response = await self.client.get("/readyz")
            body: dict[str, Any] = {"code": response.status_code, **response.json()}
            if body["checks"][check]["status"] == status:
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"{check} never became {status}: {body}")

    def _worker_busy_with(self, event_id: str) -> bool:
        worker = self.app.state.runtime.worker
        return worker is not None and bool(worker.working_on(event_id))


RelayFactory = Callable[..., Awaitable[Relay]]


@asynccontextmanager
async def running_relay(
    database_url: str, fake: FakeKeapServer, config: RelayConfig, **overrides: Any
) -> AsyncIterator[Relay]:
    values: dict[str, Any] = {
        "keap_api_key": API_KEY,
        "keap_base_url": fake.base_url,
        "keap_token_url": fake.token_url,
        "retry_base_seconds": 0.2,
        "auth_probe_seconds": 0.3,
        "claim_lease_seconds": 5,
        "keap_rate_per_second": 50,
        "keap_rate_per_minute": 3000,
    }
    values.update(overrides)
    settings = make_settings(database_url, **values)
    app = create_app(settings, config=config, run_worker=True)
    async with app.fastapi.router.lifespan_context(app.fastapi):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            yield Relay(client, app)


async def store_webhook(database_url: str, config_text: str, body: dict[str, Any]) -> str:
    """POST ``body`` to ``/hooks/cart`` (with the cart's token, ``devkit.cart.headers()``)
    of an API-only relay in this process; the stored event's id. For tests whose workers
    run apart."""
    app = create_app(make_settings(database_url), config=make_config(config_text), run_worker=False)
    async with app.fastapi.router.lifespan_context(app.fastapi):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            response = await client.post("/hooks/cart", headers=headers(), json=body)
    event_id: str = response.json()["event_id"]
    return event_id
