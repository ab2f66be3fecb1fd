"""A relay configured exactly as ``relay init SENDER…`` writes it, secrets from TEST_ENV."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main
from app.config.loader import load_config
from tests.conftest import api_relay
from tests.recipes.delivery import TEST_ENV, Delivery, as_sender_sends

RelayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def recipe_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A working directory with no .env, and the recipes' secrets in the environment."""
    monkeypatch.chdir(tmp_path)
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    return TEST_ENV


@pytest.fixture
def recipe_relay(tmp_path: Path, recipe_env: dict[str, str]) -> RelayFactory:
    """``async with recipe_relay("thrivecart") as client``: a relay (API only, SQLite)."""

    @asynccontextmanager
    async def start(*senders: str) -> AsyncIterator[httpx.AsyncClient]:
        path = tmp_path / f"relay-{'-'.join(senders)}.yaml"
        assert main(["init", *senders, "--output", str(path)]) == 0
        config = load_config(path, recipe_env)
        async with api_relay(f"sqlite:///{tmp_path / 'relay.db'}", config) as client:
            yield client

    return start


async def send(client: httpx.AsyncClient, delivery: Delivery) -> httpx.Response:
    return await client.request(
        delivery.method, delivery.url, content=delivery.content, headers=delivery.headers
    )


async def stored_event(client: httpx.AsyncClient, event_id: str) -> Any:
    return await client.app.state.store.get_event(event_id)  # type: ignore[attr-defined]


async def post_sample(
    client: httpx.AsyncClient,
    sender: str,
    sample: str,
    event_type: str,
    headers: dict[str, str] | None = None,
) -> Any:
    """Post ``sample`` as ``sender`` sends it; the event it is stored as (202 asserted)."""
    response = await send(client, as_sender_sends(sender, sample, event_type, headers))
    assert response.status_code == 202, response.text
    return await stored_event(client, response.json()["event_id"])


async def stored_counts(client: httpx.AsyncClient) -> dict[str, int]:
    counts: dict[str, int] = await client.app.state.store.count_by_status()  # type: ignore[attr-defined]
    return counts
