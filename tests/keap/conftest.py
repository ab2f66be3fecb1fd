"""Fixtures for the Keap client's unit tests: respx in front of a real httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from .keap_fakes import Harness


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def keap() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def harness(http: httpx.AsyncClient, keap: respx.MockRouter) -> Harness:
    return Harness(http)
