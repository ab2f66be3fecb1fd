"""Fixtures for the fake Keap's own tests: a live server and a client for each protocol."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from fake_keap import FakeKeapServer

Rpc = Callable[..., Any]


@pytest.fixture
def fake() -> Iterator[FakeKeapServer]:
    """A fake accepting API key "key-good" and OAuth client-1/secret-1 with "refresh-0"."""
    with FakeKeapServer(valid_keys={"key-good"}) as server:
        server.state.set_oauth("client-1", "secret-1", "refresh-0")
        yield server


@pytest.fixture
def keap(fake: FakeKeapServer) -> Iterator[httpx.Client]:
    """A client of the fake's /crm that authenticates with the valid API key."""
    with httpx.Client(base_url=fake.base_url, headers={"X-Keap-API-Key": "key-good"}) as client:
        yield client


@pytest.fixture
def rpc(keap: httpx.Client) -> Rpc:
    """Call an XML-RPC method; returns its result, or the ``Fault`` as a value."""

    def call(method: str, *params: Any, client: httpx.Client = keap) -> Any:
        response = client.post(
            "/xmlrpc/v1",
            content=xmlrpc.client.dumps(params, method).encode(),
            headers={"Content-Type": "text/xml"},
        )
        assert response.status_code == 200, response.text
        try:
            (result,), _ = xmlrpc.client.loads(response.content)
        except xmlrpc.client.Fault as fault:
            return fault
        return result

    return call
