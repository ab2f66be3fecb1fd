"""Shared fixtures: a relay app on a real database — every test that needs one runs on
both SQLite and PostgreSQL through ``database_url`` — with a config written as YAML the
way a user would.

The PostgreSQL runs use RELAY_TEST_POSTGRES_URL (default: the local server), each test in
a new schema dropped afterwards. They skip when the server does not answer, unless
RELAY_REQUIRE_POSTGRES=1 (CI), where an unreachable server fails them instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings as hypothesis_settings

from app.config.loader import parse_config
from app.config.models import RelayConfig
from app.main import create_app
from app.settings import Settings
from app.store.sqlite_db import SQLiteDatabase
from devkit.fixtures import postgres_schema_url, postgres_server_url  # noqa: F401  fixtures
from devkit.no_skips import (  # noqa: F401  hooks: under RELAY_FORBID_SKIPS=1 a skip fails
    pytest_make_collect_report,
    pytest_runtest_makereport,
)

# Under CI (CI=true) every hypothesis test is derandomized: a red build reproduces exactly
# and a green one is not a matter of luck. Locally each run draws new examples (and replays
# the failures hypothesis remembers). A test's own @settings still set its example count.
hypothesis_settings.register_profile("ci", derandomize=True, max_examples=100, deadline=None)
if os.environ.get("CI", "").lower() in ("1", "true"):
    hypothesis_settings.load_profile("ci")

SECRETS = {
    "SHOP_SECRET": "shpss_test_secret",
    "WOO_SECRET": "woo-test-secret",
    "STRIPE_SECRET": "whsec_stripetestsecret",
    "MEMBERS_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "CART_SECRET": "cart-secret",
    "THRIVECART_SECRET": "thrive-word",
    "MM_TOKEN": "mm-token-123",
    "CF_SECRET": "cf-secret",
    "PADDLE_SECRET": "pdl_ntfset_secret",
}

CONFIG_YAML = """
sources:
  shop:
    verify: {scheme: shopify, secret: "${SHOP_SECRET}"}
  woo:
    verify: {scheme: woocommerce, secret: "${WOO_SECRET}"}
  stripe:
    verify: {scheme: stripe, secret: "${STRIPE_SECRET}"}
  members:
    verify: {scheme: standard, secret: "${MEMBERS_SECRET}"}
    event_type: body.type
  legacy-cart:
    verify: {scheme: hmac, secret: "${CART_SECRET}", header: x-signature, encoding: hex}
    event_type: body.event
  thrivecart:
    verify: {scheme: token, secret: "${THRIVECART_SECRET}", at: body.thrivecart_secret}
    event_type: body.event
    event_id: "join('/', [body.event, body.order_id, body.invoice_id || ''])"
  membermouse:
    verify: {scheme: token, secret: "${MM_TOKEN}", at: query.token}
    methods: [GET, POST]
    event_type: body.event_type
  office:
    verify: {scheme: none}
    allow_ips: [203.0.113.0/24, "2001:db8::/32"]
    event_type: body.type

routes:
  - name: paid-order
    source: shop
    event: orders/paid
    when: "body.financial_status == 'paid'"
    contact:
      email: body.customer.email
      given_name: body.customer.first_name
      family_name: body.customer.last_name
      opt_in_reason: "'Bought from the shop'"
    actions:
      - action_set: 42
      - tags: [101, 102]
      - sequence: {campaign: 7, sequence: 3}
      - email_template: 55
      - goal: {integration: shop, call_name: purchase}
  - name: woo-order
    source: woo
    event: "order.*"
    contact: {email: body.billing.email, given_name: body.billing.first_name}
    actions:
      - tags: [201]
  - name: new-member
    source: members
    event: member.created
    contact: {email: body.data.email, full_name: body.data.name}
  - name: cancelled
    source: members
    event: member.cancelled
    contact: {email: body.data.email}
    actions:
      - remove_tags: [101]
      - remove_sequence: {campaign: 7, sequence: 3}
  - name: thrive-order
    source: thrivecart
    event: order.success
    contact: {email: body.customer.email, given_name: body.customer.first_name}
    actions:
      - tags: [301]
  - name: mm-member
    source: membermouse
    event: mm_member_add
    contact: {email: body.email, given_name: body.first_name}
  - name: legacy
    source: legacy-cart
    event: sale
    contact: {email: body.email}
  - name: stripe-paid
    source: stripe
    event: checkout.session.completed
    contact: {email: body.data.object.customer_details.email}
    actions:
      - tags: [401]
"""


def make_config(text: str = CONFIG_YAML, env: dict[str, str] | None = None) -> RelayConfig:
    return parse_config(text, {**SECRETS, **(env or {})})


@pytest.fixture
def relay_config() -> RelayConfig:
    return make_config()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'relay.db'}"


@pytest.fixture
def writer_thread_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite webhooks committed by the writer thread, with no ingest writer process:
    for tests of the thread itself, which takes every other write and whatever the
    process cannot store (app/store/sqlite_ingest.py)."""

    async def not_started(self: SQLiteDatabase) -> None:
        return None

    monkeypatch.setattr(SQLiteDatabase, "_start_ingest", not_started)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'relay.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "config": "/nonexistent/relay.yaml",
        "log_format": "console",
        "database_pool_size": 4,  # PostgreSQL: enough for a test, quicker to open than 10
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


AppFactory = Callable[..., Any]


@asynccontextmanager
async def api_relay(database_url: str, config: RelayConfig) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client bound to a relay app (API only, no worker) on ``database_url``,
    calling from 198.51.100.7; ``client.app`` is the app."""
    app = create_app(make_settings(database_url), config=config, run_worker=False)
    async with app.fastapi.router.lifespan_context(app.fastapi):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def relay(database_url: str, relay_config: RelayConfig) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client bound to a relay app (API only) on a fresh database."""
    async with api_relay(database_url, relay_config) as client:
        yield client
