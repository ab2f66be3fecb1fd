"""The PostgreSQL fixtures of every test suite (tests/ and bench/tests/): import them into a
conftest.py. Unless RELAY_REQUIRE_POSTGRES=1 (CI), an unreachable server skips the tests
that need it; under it, they fail."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devkit.postgres import fresh_postgres_schema, postgres_unreachable_reason, postgres_url


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The test server's URL, once it has answered a connection (else skip or fail)."""
    url = postgres_url()
    reason = postgres_unreachable_reason(url)
    if reason is not None:
        if os.environ.get("RELAY_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


@pytest.fixture
def postgres_schema_url(postgres_server_url: str) -> Iterator[str]:
    """A URL whose connections see only a new, empty schema, dropped after the test."""
    with fresh_postgres_schema(postgres_server_url, prefix="t_") as url:
        yield url
